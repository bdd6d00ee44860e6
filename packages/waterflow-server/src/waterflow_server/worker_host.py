"""The interpreter workflow worker, hosted inside the API server process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Literal

from temporalio.client import Client

log = logging.getLogger(__name__)

WorkerState = Literal["running", "stopped", "disabled"]


class InterpreterWorkerHost:
    """Runs ``build_interpreter_worker(client)`` in the background of the server's event loop."""

    def __init__(self, client: Client, task_queue: str, *, enabled: bool = True) -> None:
        self.client = client
        self.task_queue = task_queue
        self.enabled = enabled
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

        self._worker = build_interpreter_worker(self.client, task_queue=self.task_queue)
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
