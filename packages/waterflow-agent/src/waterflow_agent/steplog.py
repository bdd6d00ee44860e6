"""Step logging: the ``ctx.log`` a node writes to.

A step's logger admits a line if the step's log budget allows it (a rate limit, ADR 0025), masks
secrets, then keeps the recent lines (heartbeat details and the result's ``log_tail``), passes
each line to the agent's LogHandler, and propagates to the agent's own log under
``waterflow.step.<job>/<step>``. Lines over the budget are dropped everywhere and counted; a
warning line says how many, before the next admitted line and at the end of the step.

The :class:`LogShipper` between steps and the LogHandler holds a bounded queue: when the handler
falls behind, records are dropped and counted per step, and a warning record per step says how
many once the queue has room again. Neither a chatty step nor a slow handler grows the agent's
memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from waterflow_core.providers import LogHandler

from .masking import SecretMasker

STEP_LOGGER = "waterflow.step"
TAIL_LINES = 50
HEARTBEAT_LINES = 20
TAIL_LINE_CHARS = 2000
"""Longer lines are cut in the tail (heartbeat details, results, errors: all bounded Temporal
payloads); the LogHandler still receives them whole."""

LINE_COST = 256
"""Bytes a line costs beyond its text, in the budget and in the shipper's queue: what a record
adds around the message (a JSON lines record carries a dozen fields)."""
DEFAULT_RATE = 1024 * 1024
DEFAULT_BURST = 8 * 1024 * 1024
MAX_QUEUED = 8 * 1024 * 1024
"""Bytes of records (text plus :data:`RECORD_COST` each) the shipper holds for a slow handler."""
RECORD_COST = 1024
"""What a queued record costs beyond its message: the dict of its fields."""
MAX_DROP_COUNTERS = 1000
_SHIPPED_PER_YIELD = 100

log = logging.getLogger(__name__)


class LogBudget:
    """A token bucket of bytes: ``rate`` a second, at most ``burst`` at once (``rate`` 0: no limit)."""

    def __init__(self, rate: int = DEFAULT_RATE, burst: int = DEFAULT_BURST) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = time.monotonic()

    def take(self, size: int) -> bool:
        """Spend ``size`` bytes if the bucket holds them."""
        if self.rate == 0:
            return True
        now = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if size > self._tokens:
            return False
        self._tokens -= size
        return True


class StepLog:
    """The logger of one step execution and what it collected."""

    def __init__(
        self,
        step_path: str,
        masker: SecretMasker,
        *,
        ship: Callable[[dict[str, Any]], None] | None = None,
        fields: dict[str, Any] | None = None,
        tail: int = TAIL_LINES,
        budget: LogBudget | None = None,
    ) -> None:
        # A free-standing Logger (not logging.getLogger): the logging module keeps every named
        # logger forever, and an agent runs an unbounded number of steps.
        self.logger = logging.Logger(f"{STEP_LOGGER}.{step_path}")  # noqa: LOG001
        self.logger.parent = logging.getLogger(STEP_LOGGER)
        # The step's own lines are collected whatever the agent's --log-level: without a level of
        # its own the logger would inherit the root's and drop every info line at `warning`. What
        # reaches the agent's own log still follows that level (_Collector forwards by it).
        self.logger.setLevel(min(logging.INFO, self.logger.parent.getEffectiveLevel()))
        self.logger.propagate = False
        self.logger.addFilter(self._admit)
        self.logger.addHandler(_Collector(self))
        self._budget = budget or LogBudget()
        self._dropped = 0
        self._dropped_bytes = 0
        self._lock = threading.Lock()
        self._masker = masker
        self._ship = ship
        self._fields = fields or {}
        self._lines: deque[str] = deque(maxlen=tail)
        self.count = 0
        self._formatter = logging.Formatter()

    @property
    def tail(self) -> list[str]:
        """The most recent lines, oldest first."""
        return list(self._lines)

    def heartbeat_details(self) -> dict[str, Any]:
        """What the step's heartbeats carry: the last lines and how many lines were logged.

        ``count`` lets a reader following the logs tell which of ``lines`` it has not seen yet.
        """
        return {"lines": list(self._lines)[-HEARTBEAT_LINES:], "count": self.count}

    def close(self) -> None:
        """The step ended: say how many lines were dropped since the last admitted one."""
        self._report_dropped()

    def _admit(self, record: logging.LogRecord) -> bool:
        # Runs before any handler, the agent's own included, because logger filters run before
        # propagation and every handler shares this record object.
        if not getattr(record, "waterflow_dropped", False):
            size = len(record.getMessage())
            with self._lock:  # nodes may log from threads
                if not self._budget.take(size + LINE_COST):
                    self._dropped += 1
                    self._dropped_bytes += size
                    return False
            self._report_dropped()
        record.msg = self._masker.text(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self._masker.text(self._formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = self._masker.text(record.stack_info)
        return True

    def _report_dropped(self) -> None:
        with self._lock:
            count, size = self._dropped, self._dropped_bytes
            self._dropped = self._dropped_bytes = 0
        if not count:
            return
        record = self.logger.makeRecord(
            self.logger.name,
            logging.WARNING,
            __file__,
            0,
            "%d log line(s) (%d bytes) dropped: the step logged faster than the agent's limit of "
            "%d bytes a second (bursts of %d)",
            (count, size, self._budget.rate, self._budget.burst),
            None,
        )
        record.waterflow_dropped = True
        self.logger.handle(record)

    def _collect(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if record.levelno >= logging.WARNING:
            line = f"{record.levelname}: {line}"
        if len(line) > TAIL_LINE_CHARS:
            self._lines.append(f"{line[:TAIL_LINE_CHARS]}… ({len(line)} chars)")
        else:
            self._lines.append(line)
        self.count += 1
        if self._ship is not None:
            ts = datetime.fromtimestamp(record.created, UTC).isoformat()
            self._ship({**self._fields, "ts": ts, "level": record.levelname, "message": line})


class _Collector(logging.Handler):
    def __init__(self, owner: StepLog) -> None:
        super().__init__(logging.NOTSET)
        self._owner = owner

    def emit(self, record: logging.LogRecord) -> None:
        self._owner._collect(record)
        parent = self._owner.logger.parent
        if parent is not None and parent.isEnabledFor(record.levelno):
            parent.handle(record)


class LogShipper:
    """Hands step log records to the agent's LogHandler without blocking the step.

    ``submit`` may be called from any thread (nodes can log from ``asyncio.to_thread``); records
    are emitted in order by one task. The queue holds at most ``max_queued`` bytes (message text
    plus :data:`RECORD_COST` per record); beyond that records are dropped and counted per step,
    and one warning record per step says how many once the queue has drained. A failing handler is
    logged, never fatal to a step.
    """

    def __init__(self, handler: LogHandler, *, max_queued: int = MAX_QUEUED) -> None:
        self._handler = handler
        self._max = max_queued
        self._queue: deque[tuple[dict[str, Any], int]] = deque()
        self._queued = 0
        self._dropped: dict[tuple[Any, ...], tuple[dict[str, Any], int]] = {}
        self._wakeup = asyncio.Event()
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._task = asyncio.create_task(self._run(), name="waterflow-log-shipper")

    def submit(self, record: dict[str, Any]) -> None:
        """Queue one record, or count it as dropped when the queue is full (thread-safe)."""
        if threading.get_ident() == self._thread:
            self._put(record)
        else:
            self._loop.call_soon_threadsafe(self._put, record)

    @property
    def dropped(self) -> int:
        """Records dropped and not yet reported."""
        return sum(count for _, count in self._dropped.values())

    async def close(self) -> None:
        """Emit what is queued (and the dropped-records warnings), then close the handler."""
        self._closing = True
        self._wakeup.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._handler.close()

    def _put(self, record: dict[str, Any]) -> None:
        cost = len(str(record.get("message", ""))) + RECORD_COST
        if self._queued + cost > self._max:
            self._drop(record)
            return
        self._queue.append((record, cost))
        self._queued += cost
        self._wakeup.set()

    def _drop(self, record: dict[str, Any]) -> None:
        key = tuple(record.get(name) for name in ("workflow_id", "run_id", "step_path", "attempt"))
        if key not in self._dropped and len(self._dropped) >= MAX_DROP_COUNTERS:
            key = ()  # too many steps at once: one counter for the rest
        fields, count = self._dropped.get(key) or (
            {} if not key else {k: v for k, v in record.items() if k not in ("ts", "level", "message")},
            0,
        )
        self._dropped[key] = (fields, count + 1)

    def _markers(self) -> list[dict[str, Any]]:
        ts = datetime.now(UTC).isoformat()
        markers = [
            {
                **fields,
                "ts": ts,
                "level": "WARNING",
                "message": f"{count} log line(s) dropped: the agent's log handler fell behind",
            }
            for fields, count in self._dropped.values()
        ]
        self._dropped.clear()
        return markers

    async def _run(self) -> None:
        shipped = 0
        while True:
            if not self._queue:
                if self._dropped:
                    self._queue.extend((marker, 0) for marker in self._markers())
                    continue
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            record, cost = self._queue.popleft()
            self._queued -= cost
            try:
                await self._handler.emit(record)
            except Exception:  # shipping is best effort
                log.exception("log handler %s failed", type(self._handler).__name__)
            shipped += 1
            if shipped % _SHIPPED_PER_YIELD == 0:
                await asyncio.sleep(0)  # a synchronous handler must not hold the loop for a whole backlog
