"""``concurrency:``: one lock workflow per key, shared by every run of the namespace (ADR 0040).

``WaterflowLock`` (id :func:`lock_id`) holds one lock: its holder and its FIFO of waiters. A run
asks for it through the :data:`REQUEST_ACTIVITY` (workflows cannot signal-with-start; the activity
runs on the server's queue and starts the lock workflow if no run holds the key), then waits for
the lock's answer on :data:`ANSWER_SIGNAL`: ``queued`` (naming the holder), ``granted`` or
``refused``. It gives the lock back with :data:`RELEASE_SIGNAL` (also to withdraw a request it
no longer waits for). The lock workflow learns of a holder that ended without releasing
(terminated, reset) through the :data:`WATCH_ACTIVITY`, which waits for the holder's result.

Policies, decided by the lock when the request arrives:

- ``queue``: wait behind the holder and every earlier waiter (all waiters are kept, FIFO).
- ``cancel-running``: the lock cancels the holder run and every run waiting before (the newest
  wins, as GitHub's ``cancel-in-progress``); the newcomer gets the lock once the holder has
  ended (its compensations included) and released it.
- ``refuse``: when the lock is held or awaited, the newcomer is refused at once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

from ..runs import LockStatus

LOCK_WORKFLOW = "WaterflowLock"
REQUEST_ACTIVITY = "waterflow.lock-request"
WATCH_ACTIVITY = "waterflow.lock-watch"
ACQUIRE_SIGNAL = "waterflow.lock.acquire"
RELEASE_SIGNAL = "waterflow.lock.release"
ANSWER_SIGNAL = "waterflow.lock.answer"
"""Sent by the lock workflow to a requesting run (a :class:`LockAnswer`)."""
STATE_QUERY = "state"
MAX_KEY_CHARS = 500
"""A rendered key longer than this fails the run (it is shown in progress and kept in histories)."""
MAX_WAITERS = 1000
"""Runs that may wait for one key; more are refused (the waiters are the lock's input when it
continues as new, which must stay far below Temporal's 2 MB payload limit)."""
MAX_HISTORY = 2000
"""Events after which the lock workflow continues as new (its state is a few hundred bytes a waiter)."""
WATCH_HEARTBEAT = 5.0

Policy = Literal["queue", "cancel-running", "refuse"]
RUN_SCOPE = "workflow"


def lock_id(key: str) -> str:
    """The lock workflow's id for ``key`` (hashed: a key may hold any character)."""
    return "waterflow-lock:" + hashlib.sha256(key.encode()).hexdigest()[:32]


def job_scope(job_id: str) -> str:
    """What names a job's request among its run's requests."""
    return f"job:{job_id}"


class LockRequest(BaseModel):
    """One run's request for the lock (a run has one per ``concurrency:`` it meets)."""

    key: str
    run: str
    """The requesting run's workflow id."""
    run_id: str
    scope: str
    """``workflow`` or ``job:<id>``."""
    policy: Policy = "queue"
    since: datetime
    """When the run asked; for the holder, when it got the lock."""


class LockRelease(BaseModel):
    """A run gives the lock back, or withdraws its request."""

    run: str
    scope: str


class LockAnswer(BaseModel):
    """The lock's answer to a request."""

    scope: str
    state: Literal["queued", "granted", "refused"]
    holder: str = ""
    """The run holding the lock when the request arrived (queued, refused)."""
    error: str | None = None


class LockState(BaseModel):
    """The lock workflow's state: its input, what it continues as new with, its ``state`` query."""

    key: str
    holder: LockRequest | None = None
    waiting: list[LockRequest] = Field(default_factory=list)


class WatchRequest(BaseModel):
    run: str
    run_id: str


@workflow.defn(name=LOCK_WORKFLOW)
class WaterflowLock:
    """Grants one key's lock to one run at a time, FIFO; ends when nobody holds or waits."""

    @workflow.init
    def __init__(self, state: LockState) -> None:
        self._state = state
        self._outbox: list[tuple[str, LockRequest, LockAnswer | None]] = []
        """Answers (``answer``) and cancellations (``cancel``) to send, in order."""

    @workflow.query(name=STATE_QUERY)
    def state(self) -> LockState:
        """The holder and the waiters, in order."""
        return self._state

    @workflow.signal(name=ACQUIRE_SIGNAL)
    def acquire(self, request: LockRequest) -> None:
        """A run asks for the lock; decided here by the request's policy."""
        state = self._state
        holder = state.holder
        mine = [r for r in ([holder] if holder else []) + state.waiting if r.run == request.run]
        if any(r.scope == request.scope for r in mine):
            return  # the request activity was retried after its signal arrived: already known
        if any(RUN_SCOPE in (r.scope, request.scope) for r in mine):
            # The run's workflow-level lock and one of its jobs share a key: it would wait for itself.
            self._answer(request, "refused", error=f"concurrency key {state.key!r} is already taken by this run")
            return
        if request.policy == "refuse" and (holder is not None or state.waiting):
            ahead = holder.run if holder else state.waiting[0].run
            self._answer(request, "refused", ahead, f"concurrency key {state.key!r} is held by run {ahead}")
            return
        if len(state.waiting) >= MAX_WAITERS:
            self._answer(request, "refused", error=f"{MAX_WAITERS} runs already wait for concurrency key {state.key!r}")
            return
        if request.policy == "cancel-running":
            for other in ([holder] if holder else []) + state.waiting:
                if other.run != request.run:
                    self._outbox.append(("cancel", other, None))
        state.waiting.append(request)
        if holder is not None:
            self._answer(request, "queued", holder.run)

    @workflow.signal(name=RELEASE_SIGNAL)
    def release(self, release: LockRelease) -> None:
        """A run gives the lock back (or withdraws its request); unknown releases are ignored."""
        state = self._state
        if state.holder is not None and (state.holder.run, state.holder.scope) == (release.run, release.scope):
            state.holder = None
        state.waiting = [r for r in state.waiting if (r.run, r.scope) != (release.run, release.scope)]

    def _answer(self, request: LockRequest, answer: str, holder: str = "", error: str | None = None) -> None:
        reply = LockAnswer.model_validate({"scope": request.scope, "state": answer, "holder": holder, "error": error})
        self._outbox.append(("answer", request, reply))

    @workflow.run
    async def run(self, state: LockState) -> None:
        watch: asyncio.Task[Any] | None = None
        watched: LockRequest | None = None
        while True:
            await self._flush()
            if self._state.holder is not watched and watch is not None:
                watch.cancel()
                watch = watched = None
            if self._state.holder is None and self._state.waiting:
                self._state.holder = self._state.waiting.pop(0).model_copy(update={"since": workflow.now()})
                self._answer(self._state.holder, "granted")
                continue
            holder = self._state.holder
            if holder is not None and watch is None:
                watched = holder
                watch = asyncio.create_task(_watch(holder))
            if holder is None and not self._outbox:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._state.holder is None and not self._state.waiting and not self._outbox:
                    return
                continue
            if not self._outbox and workflow.info().get_current_history_length() > MAX_HISTORY:
                if watch is not None:
                    watch.cancel()
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._state)
            await workflow.wait_condition(partial(self._moved, holder, watch))
            if watch is not None and watch.done() and self._state.holder is watched:
                workflow.logger.info("lock holder %s ended without releasing", watched and watched.run)
                self._state.holder = None

    def _moved(self, holder: LockRequest | None, watch: asyncio.Task[Any] | None) -> bool:
        return bool(self._outbox) or self._state.holder is not holder or (watch is not None and watch.done())

    async def _flush(self) -> None:
        while self._outbox:
            kind, request, answer = self._outbox.pop(0)
            handle = workflow.get_external_workflow_handle(request.run)
            try:
                if kind == "cancel":
                    await handle.cancel()
                else:
                    await handle.signal(ANSWER_SIGNAL, answer)
            except Exception:  # noqa: BLE001 - the run has ended: it can neither hold nor wait
                workflow.logger.info("lock: run %s has ended", request.run)
                self.release(LockRelease(run=request.run, scope=request.scope))


async def _watch(holder: LockRequest) -> None:
    """Return once ``holder``'s run has ended (or the watch was cancelled: the holder released)."""
    try:
        await workflow.execute_activity(
            WATCH_ACTIVITY,
            WatchRequest(run=holder.run, run_id=holder.run_id),
            start_to_close_timeout=timedelta(days=365),
            heartbeat_timeout=timedelta(seconds=WATCH_HEARTBEAT * 6),
            # Retried without end (a server restart, a lost heartbeat): only a release cancels it.
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
            summary=f"until run {holder.run} ends",
        )
    except ActivityError:
        workflow.logger.info("stopped watching run %s", holder.run)


def lock_activities(client: Client) -> list[Callable[..., Awaitable[None]]]:
    """The activities behind locks (served by the interpreter worker, with ``client``)."""

    @activity.defn(name=REQUEST_ACTIVITY)
    async def request_lock(request: LockRequest) -> None:
        await client.start_workflow(
            LOCK_WORKFLOW,
            LockState(key=request.key),
            id=lock_id(request.key),
            task_queue=activity.info().task_queue,
            start_signal=ACQUIRE_SIGNAL,
            start_signal_args=[request],
        )

    @activity.defn(name=WATCH_ACTIVITY)
    async def watch_holder(request: WatchRequest) -> None:
        handle = client.get_workflow_handle(request.run, run_id=request.run_id)
        ended = asyncio.create_task(handle.result(follow_runs=False))
        try:
            while not ended.done():
                activity.heartbeat()
                await asyncio.wait({ended}, timeout=WATCH_HEARTBEAT)
        finally:
            ended.cancel()
        # Succeeded, failed, cancelled, terminated or gone: the holder has ended either way.
        if not ended.cancelled() and ended.exception() is not None:
            activity.logger.info("lock holder %s ended: %r", request.run, ended.exception())

    return [request_lock, watch_holder]


class RunLocks:
    """A run's side of its locks: requests, the answers (a signal), what it holds."""

    def __init__(self, held: list[LockStatus]) -> None:
        self._answers: dict[str, LockAnswer] = {}
        self._held = held
        """The run's progress list of held locks (shown in the API)."""
        self._asked: dict[str, str] = {}  # scope -> key, for the release

    def deliver(self, answer: LockAnswer) -> None:
        """The lock's answer (signal handler); a ``queued`` answer never replaces a final one."""
        known = self._answers.get(answer.scope)
        if known is None or known.state == "queued":
            self._answers[answer.scope] = answer

    async def acquire(
        self,
        scope: str,
        key: str,
        policy: Policy,
        show: Callable[[LockStatus | None], None],
        stop: Callable[[], bool],
        timeout: float | None = None,
    ) -> str | None:
        """Wait for the lock; ``None`` once held, else why not (refused, or ``stop()`` became true).

        Raises ``asyncio.CancelledError``/``TimeoutError`` as the wait does, after withdrawing.
        """
        info = workflow.info()
        if len(key) > MAX_KEY_CHARS:
            return f"concurrency key is {len(key)} characters long, at most {MAX_KEY_CHARS}"
        if not key:
            return "concurrency key is empty"
        request = LockRequest(
            key=key, run=info.workflow_id, run_id=info.run_id, scope=scope, policy=policy, since=workflow.now()
        )
        self._asked[scope] = key
        waiting = LockStatus(key=key, policy=policy, since=request.since, scope=scope)
        show(waiting)
        try:
            await workflow.execute_activity(
                REQUEST_ACTIVITY,
                request,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=5, initial_interval=timedelta(seconds=1)),
                summary=f"lock {key}",
            )
        except ActivityError as exc:
            self._asked.pop(scope, None)
            show(None)
            reason = exc.cause.message if isinstance(exc.cause, FailureError) else str(exc)
            return f"cannot ask for the concurrency lock {key!r}: {reason}"

        def answered() -> bool:
            answer = self._answers.get(scope)
            if answer is not None and answer.state == "queued" and not waiting.holder:
                waiting.holder = answer.holder
                show(waiting)
            return (answer is not None and answer.state != "queued") or stop()

        try:
            await workflow.wait_condition(answered, timeout=timeout, timeout_summary=f"lock {key}")
        except (asyncio.CancelledError, TimeoutError):
            show(None)
            await self.release(scope)
            raise
        show(None)
        answer = self._answers.get(scope)
        if answer is None or answer.state != "granted":
            await self.release(scope)
            if answer is not None and answer.state == "refused":
                return answer.error or f"concurrency key {key!r} is held by run {answer.holder}"
            return "stopped while waiting for the lock"
        held = LockStatus(key=key, policy=policy, since=workflow.now(), holder=info.workflow_id, scope=scope)
        self._held.append(held)
        return None

    async def release(self, scope: str) -> None:
        """Give the lock back (or withdraw the request); a lock that has ended is fine."""
        key = self._asked.pop(scope, None)
        if key is None:
            return
        self._answers.pop(scope, None)
        self._held[:] = [h for h in self._held if h.scope != scope]
        handle = workflow.get_external_workflow_handle(lock_id(key))
        try:
            await handle.signal(RELEASE_SIGNAL, LockRelease(run=workflow.info().workflow_id, scope=scope))
        except Exception:  # noqa: BLE001 - the lock workflow has ended: nothing is held
            workflow.logger.info("lock %s had ended before its release", key)

    async def release_all(self) -> None:
        """Release every lock the run holds or asked for."""
        for scope in list(self._asked):
            await self.release(scope)
