"""``WaterflowLoopChunk``: the child workflow that runs one chunk of a long loop (ADR 0030).

It is the interpreter itself (a subclass of :class:`~.workflow.WaterflowRun`, so its steps are
scheduled, retried, cancelled, shown and compensated by the same code), started by the run with
a :class:`~.chunks.ChunkInput`: a one-job workflow whose one step is the loop (with this chunk's
items) and the contexts the loop step saw in the run. It runs iterations from the chunk's first
item with the loop's ``max-parallel`` until one fails, ``break-if`` holds, the items end or its
own history is long enough (Temporal suggests continue-as-new, or :data:`~.chunks.CHUNK_HISTORY_EVENTS`),
and answers a :class:`~.chunks.ChunkResult`. It never runs compensations: it hands them to the
run, whose saga runs them if the run fails. Its ``progress`` query shows the chunk's steps.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from ..dsl.models import FlowLoopWith
from ..errors import ErrorCode
from ..steptask import step_path
from . import flow, scopes
from .chunks import (
    CHUNK_COMPENSATION_BYTES,
    CHUNK_HISTORY_EVENTS,
    CHUNK_WORKFLOW_TYPE,
    MAX_CHUNK_RESULT,
    ChunkInput,
    ChunkResult,
)
from .fanout import Instance
from .payloads import encoded_size, size_text
from .steptree import StepTree
from .workflow import WaterflowRun, _Frame, _Place

_OWN_CONTEXTS = ("steps", "env", "server")
"""What the loop step's contexts add to those of its list (see ``WaterflowRun._run_steps``)."""


@workflow.defn(name=CHUNK_WORKFLOW_TYPE)
class WaterflowLoopChunk(WaterflowRun):
    """Runs the iterations of one chunk of a loop; the result says what they did."""

    @workflow.init
    def __init__(self, chunk: ChunkInput) -> None:
        super().__init__(chunk.run)
        self._root = chunk.root
        self._emit.workflow_id = chunk.root  # its steps' events are the run's
        self._measured = 0
        self._compensation_bytes = 0

    def _run_id(self) -> str:
        return self._root

    @workflow.run
    async def run(self, chunk: ChunkInput) -> ChunkResult:  # type: ignore[override]
        if self._invalid:
            raise ApplicationError(self._invalid, type=ErrorCode.RUN_FAILED, non_retryable=True)
        ((job_id, job),) = self._wf.jobs.items()
        step = job.steps[0]
        loop = step.flow
        if not isinstance(loop, FlowLoopWith):
            raise ApplicationError("a loop chunk runs a flow/loop step", type=ErrorCode.RUN_FAILED, non_retryable=True)
        self._progress.started_at = workflow.now()
        entry = self._progress.jobs[0]
        entry.instance = chunk.instance
        entry.status = "running"
        sp = entry.steps[0]
        sp.id, sp.status, sp.started_at = chunk.path, "running", workflow.now()
        contexts = chunk.contexts
        frame = _Frame(
            place=_Place(job_id, job, Instance(label=chunk.instance, server=chunk.server), job.runs_on),
            scope=self._scope,
            steps=[],
            ids=[],
            entries=[],
            where=chunk.where,
            contexts={key: value for key, value in contexts.items() if key not in _OWN_CONTEXTS},
            env=dict(contexts.get("env") or {}),
            env_levels=tuple(chunk.env_levels),
            server=dict(contexts.get("server") or {}),
            tree=StepTree(entry),
            results=dict(contexts.get("steps") or {}),
        )
        self._trees[(job_id, chunk.instance)] = frame.tree
        self._load.steps = chunk.steps_run
        call = flow.FlowCall(
            flow=loop,
            path=step_path(job_id, chunk.path, chunk.instance),
            where=chunk.where,
            contexts=contexts,
            status="success",
            scope=self._scope,
            ev=self._ev,
            run=self._nested_runner(frame, sp, self._scope, step.env, contexts, chunk.where, chunk.path),
            load=self._load,
        )
        assert isinstance(loop.items, list)
        task = asyncio.create_task(
            flow.iterate(call, loop, loop.items, start=chunk.start, used=chunk.used, cut=self._cut)
        )
        while not task.done():
            try:
                await workflow.wait([task])
            except asyncio.CancelledError:
                # The run cancelled this chunk (its loop's scope ended): cancel the steps, wait
                # for them, and still answer, so the run gets the compensations of what ran.
                self._scope.cancel(scopes.CANCELLED)
        done = task.result()
        result = ChunkResult(
            results=done.results,
            failed=done.failed,
            broken_at=done.broken_at,
            cancelled=self._scope.cancelled,
            used=done.results_bytes,
            steps_run=self._load.steps,
            compensations=self._compensations,
        )
        self._bound(result, call.path)
        sp.status = entry.status = "failure" if result.failed else ("cancelled" if result.cancelled else "success")
        sp.finished_at = entry.finished_at = self._progress.finished_at = workflow.now()
        sp.log_tail = [f"ran items {chunk.start}-{chunk.start + len(done.results) - 1}"]
        self._progress.status = "failed" if result.failed else "succeeded"
        return result

    def _cut(self) -> bool:
        """Whether this chunk starts no further iteration: its history, or what it hands back, is long enough."""
        info = workflow.info()
        if info.is_continue_as_new_suggested() or info.get_current_history_length() >= CHUNK_HISTORY_EVENTS:
            return True
        for call in self._compensations[self._measured :]:
            self._compensation_bytes += encoded_size(call)
        self._measured = len(self._compensations)
        return self._compensation_bytes > CHUNK_COMPENSATION_BYTES

    @staticmethod
    def _bound(result: ChunkResult, path: str) -> None:
        """Keep the result one payload Temporal accepts: results go first, compensations last."""
        size = encoded_size(result)
        if size <= MAX_CHUNK_RESULT:
            return
        message = f"step {path} failed: a chunk's result was {size_text(size)}, over {MAX_CHUNK_RESULT} bytes"
        result.results = [None] * len(result.results)
        kept, total = 0, encoded_size(result) - encoded_size(result.compensations)
        for call in result.compensations:
            total += encoded_size(call)
            if total > MAX_CHUNK_RESULT:
                break
            kept += 1
        if kept < len(result.compensations):
            message += f"; {len(result.compensations) - kept} compensations of its steps were dropped"
            result.compensations = result.compensations[:kept]
        result.failed = result.failed or message
