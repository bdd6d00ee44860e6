"""The interpreter workflow worker, hosted inside the API server process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from temporalio.client import Client

from waterflow_core.temporal import release_failed_worker

from .event_delivery import EventDelivery, Tap
from .providers_config import DEFAULT_SERVER_GROUPS, ProviderChoice

log = logging.getLogger(__name__)

WorkerState = Literal["running", "stopped", "disabled"]

RESTART_BACKOFF = 1.0
"""Seconds before the first restart of a crashed worker; doubled after each, up to the maximum."""
MAX_RESTART_BACKOFF = 30.0


class InterpreterWorkerHost:
    """Runs ``build_interpreter_worker(client)`` in the background of the server's event loop.

    With it run the providers the worker needs: the ServerGroupProvider ``each-server`` asks and
    the delivery of run events to the EventHandlers and to ``event_taps`` (the server's metrics),
    installed before the worker polls, closed after it stopped, so the last workflow tasks'
    events are still delivered.
    """

    def __init__(
        self,
        client: Client,
        task_queue: str,
        *,
        enabled: bool = True,
        event_handlers: Sequence[ProviderChoice] = (),
        event_spool: Path | None = None,
        server_groups: ProviderChoice | None = None,
        event_taps: Sequence[Tap] = (),
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.enabled = enabled
        self.event_handlers = tuple(event_handlers)
        self.event_spool = event_spool
        self.event_taps = tuple(event_taps)
        self.server_groups = server_groups or ProviderChoice(DEFAULT_SERVER_GROUPS)
        self.events: EventDelivery | None = None
        self._worker: Any = None
        self._build: Callable[[], Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._polling = False

    @property
    def state(self) -> WorkerState:
        """``running`` while polling, ``stopped`` after a stop or while restarting after a crash,
        ``disabled`` if off."""
        if not self.enabled:
            return "disabled"
        if self._task is None or self._task.done() or not self._polling:
            return "stopped"
        return "running"

    async def start(self) -> None:
        """Build the worker and start polling ``task_queue``."""
        if not self.enabled or self._task is not None:
            return
        from waterflow_core.interpreter import build_interpreter_worker

        from .providers_config import build_event_handler, build_server_groups

        groups = build_server_groups(self.server_groups, self.client)
        self.events = EventDelivery(
            [build_event_handler(choice) for choice in self.event_handlers],
            spool=self.event_spool,
            taps=self.event_taps,
        )
        self.events.start()
        self._build = lambda: build_interpreter_worker(self.client, task_queue=self.task_queue, server_groups=groups)
        self._worker = self._build()
        self._task = asyncio.create_task(self._run(), name="waterflow-interpreter-worker")

    async def _run(self) -> None:
        """Run the worker; after a fatal error (the SDK gives up polling after about a minute of
        errors it cannot classify, e.g. a Temporal that accepts connections but never answers)
        build a new one, with backoff, until stopped: runs must not stall until someone restarts
        the server."""
        assert self._build is not None
        delay = RESTART_BACKOFF
        while True:
            try:
                if self._worker is None:
                    self._worker = self._build()
                self._polling = True
                await self._worker.run()
                return  # shut down
            except asyncio.CancelledError:
                raise
            except Exception:
                self._polling = False
                failed, self._worker = self._worker, None
                log.exception("the interpreter worker stopped with an error; restarting it in %.0fs", delay)
                if failed is not None:
                    release_failed_worker(failed)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RESTART_BACKOFF)

    async def stop(self) -> None:
        """Shut the worker down gracefully (in-flight workflow tasks finish first)."""
        task, self._task = self._task, None
        if task is None:
            return
        if not task.done() and self._worker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._worker.shutdown(), timeout=30)
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):
            await task
        if self.events is not None:
            await self.events.close()
