"""The interpreter workflow worker, hosted inside the API server process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from temporalio.client import Client

from .event_delivery import EventDelivery, Tap
from .providers_config import DEFAULT_SERVER_GROUPS, ProviderChoice

log = logging.getLogger(__name__)

WorkerState = Literal["running", "stopped", "disabled"]


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
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> WorkerState:
        """``running`` while polling, ``stopped`` after a stop or a crash, ``disabled`` if off."""
        if not self.enabled:
            return "disabled"
        if self._task is None or self._task.done():
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
        self._worker = build_interpreter_worker(self.client, task_queue=self.task_queue, server_groups=groups)
        self._task = asyncio.create_task(self._run(), name="waterflow-interpreter-worker")

    async def _run(self) -> None:
        try:
            await self._worker.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the interpreter worker stopped with an error; runs will not advance")
            raise

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
