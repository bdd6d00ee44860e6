"""Long loops: a ``flow/loop`` over more than 1000 items runs its iterations in child workflows.

Every nested step of a loop is an activity, a few events in the history that runs it; Temporal
suggests a new history at a few thousand events and terminates a run at 51,200 (ADR 0030). So a
loop over more than :data:`~.flow.MAX_INLINE_ITEMS` items runs them in *chunks*: the run starts
one child workflow (``WaterflowLoopChunk``, :mod:`.chunkrun`) at a time, which runs up to
:data:`CHUNK_ITEMS` iterations with the loop's ``max-parallel`` and stops starting new ones once
its own history is long enough (Temporal's continue-as-new suggestion); the run then starts the
next chunk at the first item not run. The run's history grows by a handful of events per chunk.

A chunk hands back each iteration's results (within the loop's 1 MiB budget), where a failure
or ``break-if`` stopped it, and the compensations of the steps it ran: the run takes those into
its own saga, so a later failure undoes them, in reverse order, like any other step's.
Cancelling the loop's scope (the run, the job, the loop's timeout) cancels the running chunk,
which cancels its steps and still answers with what it ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError

from ..dsl.models import FlowLoopWith
from ..runs import RunInput
from . import flow
from .payloads import MAX_STEP_INPUT, encoded_size, size_text
from .stepcall import StepCall

CHUNK_WORKFLOW_TYPE = "WaterflowLoopChunk"
"""The child workflows' type: not ``WaterflowRun``, so run listings do not show them."""
CHUNK_ITEMS = 1000
"""Items handed to one chunk; it may run fewer (its history is long enough, or it stopped)."""
CHUNK_HISTORY_EVENTS = 10_000
"""A chunk starts no iteration past this many events even when Temporal suggests nothing."""
CHUNK_COMPENSATION_BYTES = 256 * 1024
"""A chunk starts no iteration once the compensations it hands back pass this (its result is
one Temporal payload, 2 MB at most)."""
MAX_WORKFLOW_ID = 1000
"""Bytes of a workflow id Temporal accepts."""
MAX_CHUNK_RESULT = 3 * MAX_STEP_INPUT // 2
"""Bytes of a chunk's result: results (1 MiB at most) and compensations, under 2 MB."""


class ChunkInput(BaseModel):
    """What one chunk runs: the loop's iterations from item ``start`` (WaterflowLoopChunk's input)."""

    run: RunInput
    """A one-job, one-step workflow: the loop step (with this chunk's items), the job's
    ``runs-on`` as rendered and the workflow's ``defaults``."""
    root: str
    """The run's workflow id: agents key a run's secrets and logs by it."""
    path: str
    """The loop step's path in the job (``each``, ``outer[2]/each``): its steps' ids follow it."""
    where: str
    """The loop step's place in the document (``jobs.j.steps[1]``)."""
    instance: str | None = None
    server: str | None = None
    """The each-server instance's agent: the steps run on its own queue."""
    contexts: dict[str, Any]
    """The loop step's contexts (``steps``, ``env``, ``server``, ``inputs``...)."""
    env_levels: list[dict[str, str]] = Field(default_factory=list)
    """The environment templates before the loop step's own ``env``."""
    start: int = 0
    used: int = 0
    """Results bytes earlier chunks took of the loop's budget."""
    steps_run: int = 0
    """Nested steps the run ran before this chunk (the run-wide bound counts them all)."""


class ChunkResult(BaseModel):
    """What a chunk ran: its iterations' results, from item ``start`` on."""

    results: list[dict[str, Any] | None] = Field(default_factory=list)
    failed: str | None = None
    broken_at: int | None = None
    cancelled: bool = False
    used: int = 0
    steps_run: int = 0
    compensations: list[StepCall] = Field(default_factory=list)
    """Compensations of the steps it ran, in the order they succeeded."""


def chunk_id(call_path: str, number: int) -> str:
    """The workflow id of a loop's chunk ``number``: the same each time the run's code passes here.

    Made of the run id (unique, and the same when a recorded history is replayed under another
    workflow id), the loop step's path and the chunk's number.
    """
    return f"{workflow.info().run_id}/{call_path}/chunk-{number}"


async def run_chunks(
    call: flow.FlowCall,
    loop: FlowLoopWith,
    items: list[Any],
    spec: ChunkInput,
    done: flow.Iterations,
    *,
    adopt: Callable[[Sequence[StepCall]], None],
    show: Callable[[list[str]], None],
) -> flow.FlowOutcome:
    """Run ``items`` after those ``done`` (in the run's history) through chunk children, one
    after the other; the loop's outcome.

    ``adopt`` takes each chunk's compensations into the run's saga; ``show`` puts the loop's
    progress lines in its step entry.
    """
    number = 0
    inline = len(done.results)
    lines = [f"ran {inline} of {len(items)} iterations in the run's history"] if inline else []
    while len(done.results) < len(items) and not call.scope.cancelled:
        cursor = len(done.results)
        guard = flow.history_guard(call, cursor)
        if guard:
            done.failed = guard
            break
        number += 1
        chunk = _chunk(spec, items[cursor : cursor + CHUNK_ITEMS], cursor, done.results_bytes, call.load.steps)
        size = encoded_size(chunk)
        if size > MAX_STEP_INPUT:
            done.failed = (
                f"step {call.path} failed: a chunk of its iterations would be sent {size_text(size)}, over the "
                f"{MAX_STEP_INPUT} bytes allowed; the steps before it output too much (or its items are too large)"
            )
            break
        child = chunk_id(call.path, number)
        if len(child.encode()) > MAX_WORKFLOW_ID:
            # Temporal would refuse the command, failing the workflow task again and again.
            done.failed = f"step {call.path} failed: its chunks' workflow id would pass {MAX_WORKFLOW_ID} bytes"
            break
        show([*lines, f"chunk {number} (items {cursor}-{min(cursor + CHUNK_ITEMS, len(items)) - 1}) running: {child}"])
        result = await _one(call, chunk, child, number, cursor)
        adopt(result.compensations)
        done.results += result.results
        done.results_bytes = result.used
        call.load.steps = result.steps_run
        lines = [f"ran {len(done.results)} of {len(items)} iterations ({_chunks(number)} done)"]
        show(lines)
        done.failed = result.failed
        done.broken_at = result.broken_at
        if not result.results and not result.cancelled:
            # A chunk always runs its first item unless stopped: never start the same one again.
            done.failed = done.failed or f"step {call.path} failed: its chunk {number} ran no iteration"
        if result.cancelled and not call.scope.cancelled:
            # Cancelled from outside the run (Temporal's UI or CLI): its items did not all run.
            done.failed = done.failed or f"step {call.path} failed: its chunk {number} ({child}) was cancelled"
        if done.failed or result.broken_at is not None or result.cancelled:
            break
    log = f"ran in {_chunks(number)} (child workflows)"
    if inline:
        log = f"ran items 0-{inline - 1} in the run's history, the rest in {_chunks(number)} (child workflows)"
    return flow.loop_outcome(call, done, len(items), [log])


def _chunks(number: int) -> str:
    return f"{number} chunk{'' if number == 1 else 's'}"


def _chunk(spec: ChunkInput, items: list[Any], start: int, used: int, steps_run: int) -> ChunkInput:
    job_id, job = next(iter(spec.run.workflow["jobs"].items()))
    step = job["steps"][0]
    own = {**step, "with": {**step["with"], "items": items}}
    run = RunInput(workflow={**spec.run.workflow, "jobs": {job_id: {**job, "steps": [own]}}})
    return spec.model_copy(update={"run": run, "start": start, "used": used, "steps_run": steps_run})


async def _one(call: flow.FlowCall, chunk: ChunkInput, child: str, number: int, cursor: int) -> ChunkResult:
    """Run one chunk to its end; a chunk that fails as a workflow is the loop's failure."""
    try:
        handle = await workflow.start_child_workflow(
            CHUNK_WORKFLOW_TYPE,
            chunk,
            id=child,
            result_type=ChunkResult,
            cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
            static_summary=f"{call.path}: items from {cursor}"[:200],
        )
    except WorkflowAlreadyStartedError as exc:
        return ChunkResult(failed=f"step {call.path} failed: its chunk {number} could not start: {exc}")
    if call.scope.cancelled:
        handle.cancel()
    call.scope.track(handle)
    try:
        return await handle
    except ChildWorkflowError as exc:
        cause = exc.cause if exc.cause is not None else exc
        return ChunkResult(failed=f"step {call.path} failed: its chunk {number} ({child}) failed: {cause}")
    finally:
        call.scope.untrack(handle)
