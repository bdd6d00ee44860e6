"""Workflow validation off the event loop, with a bounded number at once and a time budget each.

``load_workflow`` is CPU-bound: a hostile 1 MiB workflow can take seconds. Run on the event
loop it would stall every other request, ``/healthz`` included. Here each validation runs in its
own thread; at most ``workers`` run at once and at most ``queue`` more wait for a slot (past that
the request is refused with 503 at once). A validation still running after ``budget`` seconds is
stopped (an exception raised inside its thread) and answered with 422 ``too_complex``: the
workflow, not the server, is what to change. See ADR 0023.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from .problems import APIError

T = TypeVar("T")

DEFAULT_WORKERS = 2
DEFAULT_QUEUE = 8
DEFAULT_BUDGET_SECONDS = 10.0


class ValidationStopped(BaseException):
    """Raised inside a validation thread whose budget ran out.

    A ``BaseException`` so that ``except Exception`` blocks in the validated code do not swallow it.
    """


class _Job(Generic[T]):
    """One validation on its own thread; its result or error goes to an asyncio future."""

    def __init__(self, work: Callable[[], T], loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future[T] = loop.create_future()
        self._work = work
        self._loop = loop
        self._lock = threading.Lock()
        self._running = True
        self.finished = asyncio.Event()
        self.thread = threading.Thread(target=self._run, name="waterflow-validate", daemon=True)

    def _run(self) -> None:
        try:
            self._attempt()
        finally:
            self._loop.call_soon_threadsafe(self.finished.set)

    def _attempt(self) -> None:
        outcome: tuple[bool, object]
        try:
            try:
                outcome = (True, self._work())
            except RecursionError:
                outcome = (False, too_complex("the workflow nests too deeply to check"))
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting request as is
                outcome = (False, exc)
            with self._lock:
                self._running = False
        except ValidationStopped:
            return
        self._loop.call_soon_threadsafe(self._settle, outcome)

    def _settle(self, outcome: tuple[bool, object]) -> None:
        if self.future.done():
            return
        ok, value = outcome
        if ok:
            self.future.set_result(value)  # type: ignore[arg-type]
        else:
            self.future.set_exception(value)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Raise :class:`ValidationStopped` in the thread if the work is still running."""
        with self._lock:
            if not self._running or self.thread.ident is None:
                return
            # Python has no other way to interrupt CPU-bound code in a thread; the exception
            # is raised at the thread's next bytecode, inside the try of _run.
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.thread.ident), ctypes.py_object(ValidationStopped)
            )


def too_complex(detail: str) -> APIError:
    """422: the workflow costs more to check than a submission may."""
    return APIError(422, "too_complex", f"{detail}; split it or simplify its expressions")


class ValidationPool:
    """Runs validations in threads: ``workers`` at once, ``queue`` waiting, ``budget`` seconds each."""

    def __init__(
        self,
        *,
        workers: int = DEFAULT_WORKERS,
        queue: int = DEFAULT_QUEUE,
        budget: float = DEFAULT_BUDGET_SECONDS,
    ) -> None:
        self.workers = workers
        self.queue = queue
        self.budget = budget
        self._slots = asyncio.Semaphore(workers)
        self._waiting = 0

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` in a thread; 503 ``busy`` if too many wait, 422 ``too_complex`` past the budget."""
        if self._slots.locked() and self._waiting >= self.queue:
            raise APIError(
                503,
                "busy",
                f"the server is validating {self.workers + self.queue} workflows already; retry shortly",
                extra={"retry_after_seconds": 1},
            )
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        job = _Job(work, asyncio.get_running_loop())
        try:
            job.thread.start()
        except RuntimeError:
            self._slots.release()
            raise APIError(503, "busy", "the server cannot start a validation now; retry shortly") from None
        try:
            done, _ = await asyncio.wait({job.future}, timeout=self.budget)
            if not done:
                job.stop()
                raise too_complex(f"checking the workflow took longer than the {self.budget:g} s budget")
            return job.future.result()
        finally:
            # Cancellation (client gone) or budget: the thread is told to stop either way, and
            # its slot is freed only once it has, so at most ``workers`` threads ever run.
            job.stop()
            release = asyncio.ensure_future(self._release_after(job))
            await asyncio.shield(release)

    async def _release_after(self, job: _Job[T]) -> None:
        await job.finished.wait()
        job.thread.join()  # it has settled and is on its way out: this returns at once
        self._slots.release()


__all__ = ["ValidationPool", "ValidationStopped", "too_complex"]
