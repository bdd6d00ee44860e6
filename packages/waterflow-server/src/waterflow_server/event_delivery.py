"""Run events from the interpreter workflow to the configured EventHandlers (ADR 0031).

:class:`EventDelivery` is the sink the worker host installs (``waterflow_core.events``). Each
handler gets a bounded queue and a dispatcher task of its own on the server's event loop, so a
slow or failing handler never delays another. ``offer`` is called from workflow activation
threads: it takes a lock for a moment, appends or (when the queue is full) drops and counts, and
wakes the dispatcher; it never waits.

The dispatcher hands events to its handler one at a time, in the order they were published; the
handler retries inside ``handle`` and raises to give an event up (counted as failed). Without a
spool, events stay in memory only: a crash of the server loses the queued ones, and ``close``
drains for a bounded time, then counts what is left as lost. With a spool directory
(:mod:`.event_spool`) each queue is also on disk, and what is left goes to the handler at the next
start instead.

*Taps* (the server's metrics) see every event too, called right in ``offer``: they must be as
quick as ``offer`` itself (count and return), and they never drop an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from waterflow_core import events
from waterflow_core.providers import EventHandler

from .event_spool import Spool

__all__ = ["DEFAULT_DRAIN_SECONDS", "ChannelStats", "EventDelivery", "Tap"]

log = logging.getLogger(__name__)

DEFAULT_DRAIN_SECONDS = 10.0
"""How long ``close`` waits for the queues to empty at shutdown."""
_CLOSE_SECONDS = 5.0
_DRAIN_POLL = 0.05

Tap = Callable[[Mapping[str, Any]], None]
"""Sees each event in ``offer`` (any thread): must not block; its exceptions are swallowed."""


@dataclass
class ChannelStats:
    """Counters of one handler's queue since the server started."""

    queued: int = 0
    delivered: int = 0
    failed: int = 0
    """Events the handler raised on (it gave up after its retries)."""
    dropped: int = 0
    """Events refused because the queue was full."""
    lost: int = 0
    """Events still queued when shutdown's drain time ran out (kept in the spool, if any)."""
    recovered: int = 0
    """Events a previous server process left in the spool."""


class _Channel:
    """One handler's bounded queue and its dispatcher task."""

    def __init__(self, handler: EventHandler, loop: asyncio.AbstractEventLoop, spool: Spool | None = None) -> None:
        self.handler = handler
        self.size = int(getattr(handler.options, "queue_size", 1000))
        self.stats = ChannelStats()
        # Each event with its end position in the spool (0 without one).
        self._items: deque[tuple[Mapping[str, Any], int]] = deque()
        self._lock = threading.Lock()
        self._loop = loop
        self._wake = asyncio.Event()
        self._spool = spool
        self.task: asyncio.Task[None] | None = None
        if spool is not None:
            self._items.extend(spool.recover())
            self.stats.recovered = len(self._items)
            if self._items:
                log.info("event handler %s: %d events from the spool", handler.name, len(self._items))
                self._wake.set()

    def offer(self, event: Mapping[str, Any]) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                self.stats.dropped += 1
                dropped = self.stats.dropped
            else:
                try:
                    # Under the lock: the spool's order is the queue's order.
                    end = self._spool.append(event) if self._spool is not None else 0
                except OSError as exc:  # a full disk: the event cannot be kept
                    self.stats.dropped += 1
                    log.warning("event handler %s: cannot spool event %s: %s", self.handler.name, event.get("id"), exc)
                    return
                self._items.append((event, end))
                self.stats.queued += 1
                dropped = 0
        if dropped:
            # Powers of two: a flood of drops makes a few lines, not one per event.
            if dropped & (dropped - 1) == 0:
                log.warning(
                    "event handler %s: queue full (%d), %d events dropped so far", self.handler.name, self.size, dropped
                )
            return
        self._loop.call_soon_threadsafe(self._wake.set)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._items)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while True:
                with self._lock:
                    if not self._items:
                        break
                    event, end = self._items[0]  # stays queued (and spooled) while it is handled
                try:
                    await self.handler.handle(event)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a handler's failure must not stop its dispatcher
                    self.stats.failed += 1
                    log.warning("event handler %s gave up event %s: %s", self.handler.name, event.get("id"), exc)
                else:
                    self.stats.delivered += 1
                with self._lock:
                    self._items.popleft()
                    if self._spool is not None:
                        self._spool.done(end, empty=not self._items)

    def abandon(self) -> int:
        with self._lock:
            left = len(self._items)
            self._items.clear()
            if self._spool is not None:
                self._spool.close()
        self.stats.lost += left
        return left


class EventDelivery:
    """Delivers the process's run events to ``handlers`` (start it on the loop that should run them)."""

    def __init__(
        self,
        handlers: Sequence[EventHandler],
        *,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
        spool: Path | None = None,
        taps: Sequence[Tap] = (),
    ) -> None:
        self.handlers = list(handlers)
        self.taps = list(taps)
        self.drain_seconds = drain_seconds
        self.spool = spool
        self._channels: list[_Channel] = []
        self._open = False

    def start(self) -> None:
        """Start a dispatcher per handler and install this delivery as the process's event sink."""
        if self._open or self._channels or not (self.handlers or self.taps):
            return
        self._open = True
        loop = asyncio.get_running_loop()
        names = _unique_names(self.handlers)
        self._channels = [
            _Channel(handler, loop, Spool(self.spool, name) if self.spool is not None else None)
            for handler, name in zip(self.handlers, names, strict=True)
        ]
        for channel in self._channels:
            channel.task = loop.create_task(channel.run(), name=f"waterflow-events-{channel.handler.name}")
        events.install_sink(self.offer)

    def offer(self, event: Mapping[str, Any]) -> None:
        """Queue ``event`` for every handler (any thread; never blocks)."""
        if not self._open:
            return
        for tap in self.taps:
            try:
                tap(event)
            except Exception:  # a metric must never cost an event its delivery
                log.debug("event tap failed on %s", event.get("id"), exc_info=True)
        for channel in self._channels:
            channel.offer(event)

    def stats(self) -> dict[str, ChannelStats]:
        """Counters per handler name (``name#2`` for a second handler of the same name); kept after close."""
        names = _unique_names([channel.handler for channel in self._channels])
        return {name: channel.stats for name, channel in zip(names, self._channels, strict=True)}

    def queues(self) -> dict[str, tuple[int, int]]:
        """``(events waiting, queue size)`` per handler, named as in :meth:`stats`."""
        names = _unique_names([channel.handler for channel in self._channels])
        return {name: (channel.pending, channel.size) for name, channel in zip(names, self._channels, strict=True)}

    async def close(self) -> None:
        """Stop taking events, drain for up to ``drain_seconds``, then close every handler."""
        events.uninstall_sink(self.offer)
        if not self._open:
            return
        self._open = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_seconds
        while any(channel.pending for channel in self._channels) and loop.time() < deadline:
            await asyncio.sleep(_DRAIN_POLL)
        for channel in self._channels:
            if channel.task is not None:
                channel.task.cancel()
                with contextlib.suppress(BaseException):
                    await channel.task
            left = channel.abandon()
            if left:
                kept = " (kept in the spool for the next start)" if self.spool is not None else ""
                log.warning("event handler %s: %d events not delivered at shutdown%s", channel.handler.name, left, kept)
            try:
                await asyncio.wait_for(channel.handler.close(), timeout=_CLOSE_SECONDS)
            except Exception as exc:  # noqa: BLE001 - one handler's close must not keep the others open
                log.warning("event handler %s did not close cleanly: %s", channel.handler.name, exc)


def _unique_names(handlers: Sequence[EventHandler]) -> list[str]:
    """Handler names, ``name#2`` for the second handler of a name (stats keys, spool files)."""
    seen: set[str] = set()
    names = []
    for handler in handlers:
        name, n = handler.name, 1
        while name in seen:
            n += 1
            name = f"{handler.name}#{n}"
        seen.add(name)
        names.append(name)
    return names
