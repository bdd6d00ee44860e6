"""Step logging: the ``ctx.log`` a node writes to.

A step's logger masks secrets first, then keeps the recent lines (heartbeat details and the
result's ``log_tail``), passes each line to the agent's LogHandler, and propagates to the agent's
own log under ``waterflow.step.<job>/<step>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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

log = logging.getLogger(__name__)


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
    ) -> None:
        # A free-standing Logger (not logging.getLogger): the logging module keeps every named
        # logger forever, and an agent runs an unbounded number of steps.
        self.logger = logging.Logger(f"{STEP_LOGGER}.{step_path}")  # noqa: LOG001
        self.logger.parent = logging.getLogger(STEP_LOGGER)
        self.logger.addFilter(self._mask)
        self.logger.addHandler(_Collector(self))
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

    def _mask(self, record: logging.LogRecord) -> bool:
        # Runs before any handler, the agent's own included, because logger filters run before
        # propagation and every handler shares this record object.
        record.msg = self._masker.text(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = self._masker.text(self._formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = self._masker.text(record.stack_info)
        return True

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


class LogShipper:
    """Hands step log records to the agent's LogHandler without blocking the step.

    ``submit`` may be called from any thread (nodes can log from ``asyncio.to_thread``); records
    are emitted in order by one task. A failing handler is logged, never fatal to a step.
    """

    def __init__(self, handler: LogHandler) -> None:
        self._handler = handler
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="waterflow-log-shipper")

    def submit(self, record: dict[str, Any]) -> None:
        """Queue one record (thread-safe)."""
        self._loop.call_soon_threadsafe(self._queue.put_nowait, record)

    async def close(self) -> None:
        """Emit what is queued, then close the handler."""
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._handler.close()

    async def _run(self) -> None:
        while (record := await self._queue.get()) is not None:
            try:
                await self._handler.emit(record)
            except Exception:  # shipping is best effort
                log.exception("log handler %s failed", type(self._handler).__name__)
