"""The flow nodes, run inside the workflow: ``flow/sleep``, ``flow/condition``, ``flow/loop``.

They are deterministic workflow code, never activities (ADR 0021): a sleep is a durable Temporal
timer, a condition picks a branch, a loop runs its steps once per item. Their nested steps run
through the interpreter's own step machinery (:attr:`FlowCall.run`, which is
``WaterflowRun._run_steps``), so a nested step is scheduled, retried, cancelled, compensated
and shown exactly like a job's own steps.

Determinism: time only from ``workflow.now()``, iterations start in item order, and the
commands issued here (timers, the activities of nested steps) are what the recorded histories in
``tests/histories/flow_*.json`` expect; changing them needs ``workflow.patched`` (ADR 0002).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow

from ..dsl.durations import MAX_DURATION_SECONDS, format_duration, parse_duration
from ..dsl.models import (
    MAX_LOOP_ITEMS,
    FlowConditionWith,
    FlowLoopWith,
    FlowSleepWith,
    FlowWith,
    Step,
    parse_timestamp,
)
from ..runs import ConditionStatus, StepStatus
from . import scopes
from .conditions import EvaluationError, Evaluator

LOOP_CHUNKS_PATCH = "2026-12-loop-chunks"
"""A loop over more than :data:`MAX_INLINE_ITEMS` items, or one running when Temporal suggests a new
history, goes on in chunks; runs recorded before refused the first and kept going in the second."""
MAX_INLINE_ITEMS = 1000
"""Items a loop may run in the run's own history (until Temporal suggests a new one); a longer
loop runs its iterations in child workflows, a chunk of them each (``chunks.py``, ADR 0030)."""
MAX_LOOP_RESULTS_BYTES = 1024 * 1024
"""JSON size of a loop's ``results``: they are read by later steps, whose activity input (one
Temporal payload, 2 MB at most) carries what their expressions reference."""
HISTORY_EVENTS_GUARD = 40_000
"""A loop starts no iteration once the run's history is this long: Temporal terminates a run
at 51,200 events (its default limit), which would skip compensations and say nothing useful."""
HISTORY_BYTES_GUARD = 40 * 1024 * 1024
"""Likewise for the history's size (Temporal's default limit: 50 MB)."""
MAX_RUN_NESTED_STEPS = 100_000
"""Nested step runs (skipped ones included) in one run, its loop chunks' included; a loop starts
no iteration beyond. Ten steps for each of a loop's 10,000 items; it bounds the CPU a run of
steps that issue no command (conditions, skipped steps, nested loops of them) can take from the
shared worker."""
LEGACY_RUN_NESTED_STEPS = 20_000
"""The bound before loops ran in chunks; runs recorded then stop there."""
MAX_NESTED_PREFIX = 500
"""Characters of a nested step's path before its own id (``each[2]/pick/``): with the job, the
id and the instance it must stay within Temporal's 1000-character activity ids."""
PACE_EVERY = 200
"""Flow and nested steps run in one workflow task before it is ended with a 1 ms timer."""


@dataclass(slots=True)
class RunLoad:
    """How much flow work a run did: its nested steps, and those since the last workflow task.

    A workflow task (activation) must finish within 2 s (Temporal's deadlock detector fails it
    otherwise, again and again). Steps that issue no command, such as a loop of conditions that
    are false, would all run in one activation: :meth:`pace` ends it every :data:`PACE_EVERY`
    steps with one short timer, shared by every step waiting in that activation.
    """

    steps: int = 0
    _history: int = -1
    _unpaced: int = 0
    _pause: asyncio.Task[None] | None = None

    async def pace(self) -> None:
        """Called before each flow step and nested step; returns when it may run."""
        while True:
            length = workflow.info().get_current_history_length()  # constant within one activation
            if length != self._history:
                self._history, self._unpaced = length, 0
            if self._unpaced < PACE_EVERY:
                self._unpaced += 1
                return
            if self._pause is None or self._pause.done():
                self._pause = asyncio.create_task(workflow.sleep(0.001, summary="flow pacing"))
            await asyncio.shield(self._pause)


class FlowError(Exception):
    """A flow step cannot run as written (e.g. ``items`` is not a list); ``str()`` names the place."""


@dataclass(slots=True)
class Nested:
    """What one run of a nested step list gave."""

    failed: str | None
    """The first failing step's message (None when every step concluded success)."""
    steps: dict[str, Any]
    """The list's own steps, as the ``steps`` context holds them (outputs, outcome, ...)."""
    visible: dict[str, Any]
    """The whole ``steps`` context at the end of the list (the steps it saw from outside too)."""


RunNested = Callable[[list[Step], str, str, "dict[str, Any] | None"], Awaitable[Nested]]
"""``(steps, key under with:, label, loop context)``: run a nested list; the label follows the
flow step's id in the nested steps' paths (``each[2]/build``: label ``[2]``; ``pick/deploy``: ``""``)."""


Chunked = Callable[["FlowCall", FlowLoopWith, list[Any], "Iterations"], Awaitable["FlowOutcome"]]
"""``(call, loop, items, done)``: run a loop's items after those ``done`` ran in chunks, each in
its own history."""


@dataclass(frozen=True, slots=True)
class FlowCall:
    """One flow step, as its node runs it."""

    flow: FlowWith
    """The step's typed ``with:``; its type says which node it is."""
    path: str
    """``job/step[#instance]``: for messages and timer summaries."""
    where: str
    """The step's place in the document (``jobs.j.steps[1]``), for expression errors."""
    contexts: dict[str, Any]
    """The step's contexts (``steps``, ``env``, ``loop`` inside a loop...)."""
    status: ConditionStatus
    scope: scopes.Scope
    """Cancelled when the run, job or this step's own ``timeout`` ends it."""
    ev: Evaluator
    run: RunNested
    load: RunLoad
    chunked: Chunked | None = None
    """Runs a loop over more than :data:`MAX_INLINE_ITEMS` items, or the rest of a loop once
    Temporal suggests a new history, in child workflows."""


@dataclass(slots=True)
class FlowOutcome:
    """How a flow step ended; its outputs are kept on failure too (what ran until then)."""

    outcome: StepStatus
    outputs: dict[str, Any]
    error: str | None = None
    log: list[str] = field(default_factory=list)


async def run_flow(call: FlowCall) -> FlowOutcome:
    """Run the flow step ``call``; :class:`FlowError` or an evaluation error when it cannot."""
    if isinstance(call.flow, FlowSleepWith):
        return await _sleep(call, call.flow)
    if isinstance(call.flow, FlowConditionWith):
        return await _condition(call, call.flow)
    if isinstance(call.flow, FlowLoopWith):
        return await _loop(call, call.flow)
    raise FlowError(f"{call.where}: {type(call.flow).__name__} is not run by run_flow")


# -- flow/sleep -----------------------------------------------------------------------------------


async def _sleep(call: FlowCall, flow: FlowSleepWith) -> FlowOutcome:
    now = workflow.now()
    if flow.duration is not None:
        where = f"{call.where}.with.duration"
        seconds = _duration(call.ev.render(flow.duration, call.contexts, call.status, where=where), where)
        until = now + timedelta(seconds=seconds)
    else:
        where = f"{call.where}.with.until"
        until = _moment(call.ev.render(flow.until, call.contexts, call.status, where=where), where)
        seconds = max((until - now).total_seconds(), 0.0)
        if seconds > MAX_DURATION_SECONDS:
            raise FlowError(f"{call.where}.with.until: {_iso(until)} is more than 366 days ahead")
    outputs = {"until": _iso(until), "seconds": seconds}
    if seconds > 0:
        try:
            # A durable timer, cancelled early only by this step's scope (run or job cancelled or
            # timed out, or the step's own timeout).
            await workflow.wait_condition(
                lambda: call.scope.cancelled, timeout=seconds, timeout_summary=f"flow/sleep {call.path}"
            )
        except TimeoutError:
            pass
        else:
            return FlowOutcome("cancelled", outputs, log=[f"sleep until {_iso(until)} was cancelled"])
    return FlowOutcome("success", outputs, log=[f"slept {format_duration(seconds)} (until {_iso(until)})"])


def _duration(value: Any, where: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise FlowError(f"{where}: {exc}") from None


def _moment(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise FlowError(f"{where}: expected a timestamp such as 2030-01-31T08:00:00Z, got {_show(value)}")
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise FlowError(f"{where}: {exc}") from None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- flow/condition -------------------------------------------------------------------------------


async def _condition(call: FlowCall, flow: FlowConditionWith) -> FlowOutcome:
    result = call.ev.truth(flow.if_, call.contexts, call.status, where=f"{call.where}.with.if")
    branch, steps = ("then", flow.then) if result else ("else", flow.else_)
    nested = await call.run(steps, branch, "", None) if steps else Nested(None, {}, {})
    outputs = {"branch": branch, "result": result, "steps": nested.steps}
    log = [f"if was {'true' if result else 'false'}: ran {branch} ({len(steps)} steps)"]
    return _ended(call, outputs, nested.failed, log)


def _ended(call: FlowCall, outputs: dict[str, Any], failed: str | None, log: list[str]) -> FlowOutcome:
    if failed:
        return FlowOutcome("failure", outputs, failed, log)
    if call.scope.cancelled:
        return FlowOutcome("cancelled", outputs, None, log)
    return FlowOutcome("success", outputs, None, log)


# -- flow/loop ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Iterations:
    """What running a loop's iterations gave: all of them, or one chunk's (``chunks.py``)."""

    start: int = 0
    """The index of the first item run."""
    results: list[dict[str, Any] | None] = field(default_factory=list)
    """One entry per started iteration, from ``start`` on (None: over the results budget)."""
    failed: str | None = None
    broken_at: int | None = None
    results_bytes: int = 0
    """JSON bytes of the loop's results so far (earlier chunks' included)."""
    cut: bool = False
    """Stopped before the last item (``cut`` said so): a new history runs the rest."""
    running: int = 0


async def _loop(call: FlowCall, flow: FlowLoopWith) -> FlowOutcome:
    items = call.ev.render(flow.items, call.contexts, call.status, where=f"{call.where}.with.items")
    if not isinstance(items, list):
        raise FlowError(f"{call.where}.with.items: expected a list, got {_show(items)}")
    if len(items) > MAX_INLINE_ITEMS:
        if len(items) > MAX_LOOP_ITEMS:
            raise FlowError(f"{call.where}.with.items: a loop runs at most {MAX_LOOP_ITEMS} items, got {len(items)}")
        # Runs recorded before loops ran in chunks refused more than MAX_INLINE_ITEMS items.
        if call.chunked is None or not workflow.patched(LOOP_CHUNKS_PATCH):
            raise FlowError(
                f"{call.where}.with.items: a loop runs at most {MAX_INLINE_ITEMS} items, got {len(items)}"
            )
        return await call.chunked(call, flow, items, Iterations())
    done = await iterate(call, flow, items, cut=history_suggested if call.chunked is not None else None)
    stopped = done.failed or done.broken_at is not None or call.scope.cancelled
    if done.cut and call.chunked is not None and not stopped:
        # The run's history is long enough: the rest of the items run in chunks.
        return await call.chunked(call, flow, items, done)
    return loop_outcome(call, done, len(items))


def history_suggested() -> bool:
    """Whether Temporal suggests a new history for this workflow (a loop then goes on in chunks)."""
    # Runs recorded before loops ran in chunks went on in their own history.
    return workflow.info().is_continue_as_new_suggested() and workflow.patched(LOOP_CHUNKS_PATCH)


async def iterate(
    call: FlowCall,
    flow: FlowLoopWith,
    items: list[Any],
    *,
    start: int = 0,
    used: int = 0,
    cut: Callable[[], bool] | None = None,
) -> Iterations:
    """Run the iterations of ``items`` (the loop's, from item ``start`` on) in item order.

    ``used``: results bytes earlier chunks took. ``cut`` is asked before each iteration after
    the first: when true, no further iteration starts and the rest is left to a new history.
    """
    state = Iterations(start=start, results_bytes=used)
    outer = call.contexts.get("loop")

    async def iteration(index: int, item: Any) -> None:
        context = {"item": item, "index": index, "parent": outer}
        try:
            nested = await call.run(flow.steps, "steps", f"[{index}]", context)
            state.results[index - start] = _within_budget(call, state, index, nested.steps)
            if nested.failed:
                state.failed = state.failed or nested.failed
            elif flow.break_if is not None and state.broken_at is None and not call.scope.cancelled:
                contexts = {**call.contexts, "steps": nested.visible, "loop": context}
                if call.ev.truth(flow.break_if, contexts, "success", where=f"{call.where}.with.break-if"):
                    state.broken_at = index
        except (FlowError, EvaluationError) as exc:
            state.failed = state.failed or str(exc)
        finally:
            state.running -= 1

    tasks: list[asyncio.Task[None]] = []
    for index, item in enumerate(items, start=start):
        await workflow.wait_condition(lambda: state.running < flow.max_parallel)
        if state.failed or state.broken_at is not None or call.scope.cancelled:
            break
        if cut is not None and tasks and cut():
            state.cut = True
            break
        guard = history_guard(call, index)
        if guard:
            state.failed = guard
            break
        state.running += 1
        state.results.append(None)
        tasks.append(asyncio.create_task(iteration(index, item)))
    await asyncio.gather(*tasks)
    return state


def loop_outcome(call: FlowCall, done: Iterations, total: int, log: Sequence[str] = ()) -> FlowOutcome:
    """The loop step's outcome once its iterations (``done``, from item 0) have ended."""
    count = len(done.results)
    outputs = {"results": done.results, "count": count, "broken": done.broken_at is not None}
    lines = [*log, f"ran {count} of {total} iterations"]
    if done.broken_at is not None:
        lines.append(f"break-if was true after item {done.broken_at}")
    return _ended(call, outputs, done.failed, lines)


def _within_budget(call: FlowCall, state: Iterations, index: int, steps: dict[str, Any]) -> dict[str, Any] | None:
    """``steps`` (an iteration's results) while the loop's results fit their budget, else None
    and the loop fails: later steps could not be sent what they read."""
    state.results_bytes += len(json.dumps(steps, separators=(",", ":"), default=str).encode())
    if state.results_bytes <= MAX_LOOP_RESULTS_BYTES:
        return steps
    state.failed = state.failed or (
        f"step {call.path} failed: the results of its iterations passed {MAX_LOOP_RESULTS_BYTES // 1024} KiB "
        f"at item {index}; output less from its steps (write big data to a file and output its path)"
    )
    return None


def history_guard(call: FlowCall, index: int) -> str | None:
    """Why no further iteration may start: the run's history is close to Temporal's limits, or
    the run ran as many nested steps as a run may."""
    info = workflow.info()
    events, size = info.get_current_history_length(), info.get_current_history_size()
    if call.load.steps >= _nested_steps_limit(call.load.steps):
        reason = f"the run already ran {call.load.steps} nested steps, the most a run may"
    elif events >= HISTORY_EVENTS_GUARD or size >= HISTORY_BYTES_GUARD:
        reason = (
            f"the run's history holds {events} events ({size // (1024 * 1024)} MiB), close to Temporal's limits"
        )
    else:
        return None
    return f"step {call.path} failed: stopped before item {index}: {reason}; split the items over several runs"


def _nested_steps_limit(steps: int) -> int:
    # Runs recorded before loops ran in chunks stopped at the legacy bound.
    if steps >= LEGACY_RUN_NESTED_STEPS and not workflow.patched(LOOP_CHUNKS_PATCH):
        return LEGACY_RUN_NESTED_STEPS
    return MAX_RUN_NESTED_STEPS


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    kinds: dict[type, str] = {dict: "a mapping", list: "a list", str: "text"}
    kind = kinds.get(type(value), type(value).__name__)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"
