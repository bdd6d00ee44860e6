"""``WaterflowRun``: the one interpreter workflow (DESIGN.md, ADR 0002).

It receives the validated workflow as input and executes it: jobs as a DAG of asyncio tasks,
each job's steps in order, each executable step one activity on the task queue named by
``runs-on``; flow steps (``flow/*``) run here, their nested steps through the same step runner
(``_run_steps``; ADR 0021). See docs/reference/execution.md for the user-visible semantics.

Determinism rules for this file: time only from ``workflow.now()``, no randomness, dicts are
iterated in their (input) order, and every change to what this code *does* for an existing
history goes behind ``workflow.patched(<id>)`` (ADR 0002 describes the versioning policy).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from ..agent_registry import personal_queue
from ..dsl.durations import format_duration
from ..dsl.models import Check, FlowApprovalWith, FlowLoopWith, Job, Step, Strategy, Workflow, nested_step_lists
from ..errors import ErrorCode
from ..rerun import Rerun, ReusedStep
from ..runs import (
    CHECK_RAN,
    CHECK_RUN,
    GATES_QUERY,
    PROGRESS_QUERY,
    SIGNAL,
    WORKFLOW_TYPE,
    ConditionStatus,
    JobProgress,
    LockStatus,
    RunInput,
    RunProgress,
    RunStatus,
    SignalPayload,
    StepProgress,
    StepStatus,
    WaitingFor,
)
from ..steptask import StepTask, step_path
from . import approval, chunks, dag, flow, locks, scopes
from . import contexts as ctx
from .batches import batch_sizes, budget_exceeded
from .compensation import compensation_step_id, run_compensations
from .conditions import EvaluationError, Evaluator
from .emit import Emitter
from .failures import StepFailure
from .fanout import (
    SERVERS_ACTIVITY,
    FanoutError,
    Instance,
    ListedServer,
    ServersRequest,
    expand_matrix,
    label_instances,
)
from .retry import activity_options
from .stepcall import StepCall, launch
from .steptree import NestedBudget, StepTree

FLOW_PATCH = "2026-12-flow-nodes"
"""Flow steps run in the workflow; runs recorded before scheduled every step as an activity."""
WAIT_FOR_AGENTS_PATCH = "2026-12-wait-for-agents"
"""each-server waits for a group's first live agent; runs recorded before failed at once."""
FINISH_EVERY_SERVER_PATCH = "2026-12-each-server-finish-all"
"""each-server's fail-fast defaults to false; runs recorded before cancelled the other servers."""
BATCHES_PATCH = "2026-12-rolling-batches"
"""``strategy.batch``: instances start batch after batch within a failure budget (ADR 0036)."""
UNREACHABLE_PATCH = "2026-12-unreachable-servers"
"""each-server lists every server of the group and fails those without a live agent; runs
recorded before left them out (ADR 0036)."""
LOCAL_SERVERS_PATCH = "2026-12-servers-local-activity"
"""each-server lists a group's servers with a local activity (a marker in the history); runs
recorded before scheduled ``waterflow.servers-of-group`` as an activity (ADR 0047)."""
SERVERS_DEADLINE = timedelta(minutes=3)
"""Bound of the local servers-of-group with its retries: 5 attempts of at most 30 s and the
1+2+4+8 s backoff between them fit (the activity it replaces had the same attempts)."""
PICKUP_PATCH = "2026-12-each-server-pickup"
"""each-server steps fail when their agent does not take them in time; runs recorded before
waited for the agent as long as the run lasted."""
RERUN_PATCH = "2026-12-rerun"
"""A rerun (``RunInput.rerun``) skips the steps that succeeded in the run it reruns (ADR 0039)."""
MAX_PICKUP = 300.0
"""The longest an each-server step waits for its server's agent to take it (seconds); a step
whose ``timeout`` is shorter waits that long (ADR 0036)."""
DEFAULT_WAIT_FOR_AGENTS = 30.0
"""Seconds ``each-server`` waits for its group's first live agent (``strategy.wait-for-agents``)."""
AGENT_POLL_INTERVAL = 2.0
"""Seconds between two looks at the registry while waiting for agents."""


@dataclass(slots=True)
class _InstanceResult:
    result: StepStatus  # success | failure | cancelled | skipped (never started: budget spent)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(slots=True)
class _StepOutcome:
    outcome: StepStatus
    outputs: dict[str, Any] = field(default_factory=dict)
    agent: str = ""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Place:
    """Where one job instance runs its steps."""

    job_id: str
    job: Job
    instance: Instance
    group: str
    """The rendered ``runs-on``."""

    @property
    def queue(self) -> str:
        """The steps' queue: the instance's agent's own queue (each-server), else the group."""
        return personal_queue(self.instance.server) if self.instance.server else self.group

    @property
    def path(self) -> str:
        """``job[#instance]``, as messages name the instance."""
        return step_path(self.job_id, None, self.instance.label)


@dataclass(slots=True)
class _Running:
    """The step a job instance is running (nested steps included), for its timeout message."""

    step: str = ""


@dataclass(slots=True)
class _Frame:
    """One list of steps being run: a job instance's own, or those a flow step runs."""

    place: _Place
    scope: scopes.Scope
    steps: Sequence[Step]
    ids: list[str]
    entries: list[StepProgress]
    """The steps' progress entries, in list order."""
    where: str
    """The list's place in the document, for messages: ``jobs.j.steps``."""
    contexts: dict[str, Any]
    """What every step of the list sees besides ``steps``, ``env`` and ``server`` (``loop`` inside a loop)."""
    env: dict[str, str]
    """The ``env`` context before the steps' own ``env``."""
    env_levels: tuple[dict[str, str], ...]
    """The environment templates before the steps' own (workflow, job, enclosing flow steps)."""
    server: dict[str, str]
    tree: StepTree
    prefix: str = ""
    """Put before the steps' ids in their paths: ``each[2]/`` inside a loop's third iteration."""
    results: dict[str, Any] = field(default_factory=dict)
    """The ``steps`` context: the steps seen from outside the list, then the list's own."""
    parent: StepProgress | None = None
    """The flow step running this list (None for a job instance's own steps)."""
    running: _Running = field(default_factory=_Running)


@workflow.defn(name=WORKFLOW_TYPE)
class WaterflowRun:
    """Interprets one run of a workflow; the ``progress`` query returns :class:`RunProgress`."""

    @workflow.init
    def __init__(self, run: RunInput) -> None:
        self._invalid: str | None = None
        try:
            self._wf = Workflow.model_validate(run.workflow)
        except ValidationError as exc:
            # Cannot happen for runs started by the server (it validated the text), but a bad
            # input must fail the run, not the workflow task forever.
            self._invalid = f"invalid workflow: {exc.errors(include_url=False)[:3]}"
            self._wf = Workflow.model_construct(name=run.name or "?", jobs={})
        self._inputs = dict(run.inputs)
        self._ev = Evaluator()
        self._scope = scopes.Scope()
        self._results: dict[str, StepStatus] = {}  # job id -> conclusion (needs.<job>.result)
        self._job_outputs: dict[str, Any] = {}
        self._job_errors: dict[str, str] = {}
        self._done: set[str] = set()
        self._compensations: list[StepCall] = []
        self._nested_entries = NestedBudget()
        self._load = flow.RunLoad()
        self._trees: dict[tuple[str, str | None], StepTree] = {}  # by job id and instance label
        self._ids = {job_id: dag.step_ids(job.steps) for job_id, job in self._wf.jobs.items()}
        self._ancestry = dag.ancestors(self._wf.jobs) if not self._invalid else {}
        self._base: dict[str, Any] = {}
        self._wf_env: dict[str, str] = {}
        self._progress = RunProgress(name=self._wf.name)
        self._emit = Emitter(self._wf.name)
        self._gates = approval.Gates()
        self._locks = locks.RunLocks(self._progress.locks)
        self._rerun: Rerun | None = None
        self._limit = run.limit
        self._check_run = run.check
        self._server_vars: dict[str, dict[str, Any]] = {}  # each-server: the provider's vars by server
        for job_id, job in self._wf.jobs.items():
            fanout = job.strategy is not None and (job.strategy.matrix is not None or job.strategy.each_server)
            self._progress.jobs.append(
                JobProgress(
                    id=job_id,
                    name=job.name or job_id,
                    runs_on=job.runs_on,
                    steps=[] if fanout else self._step_entries(job_id, job, None),
                )
            )

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> RunProgress:
        """The run's live progress (also the workflow's result)."""
        self._list_nested_steps()
        return ctx.bounded(self._progress)

    @workflow.query(name=GATES_QUERY)
    def waiting_gates(self) -> list[WaitingFor]:
        """The approval gates the run waits at now (what ``POST .../signals/{name}`` checks)."""
        return self._gates.waiting()

    @workflow.signal(name=SIGNAL)
    def answer(self, signal: SignalPayload) -> None:
        """An answer to the gates waiting for ``signal.name``; checked by each gate, never raising."""
        self._gates.deliver(signal)

    @workflow.signal(name=locks.ANSWER_SIGNAL)
    def lock_answer(self, answer: locks.LockAnswer) -> None:
        """The answer of a ``concurrency:`` lock this run asked for (ADR 0040)."""
        self._locks.deliver(answer)

    def _list_nested_steps(self) -> None:
        # Display only: no decision reads the lists, so bringing them up to date when progress
        # is read (a query, the result) keeps adding nested entries O(1) and replays unchanged.
        for tree in self._trees.values():
            tree.sync()

    # -- run ----------------------------------------------------------------------------------

    @workflow.run
    async def run(self, run: RunInput) -> RunProgress:
        info = workflow.info()
        self._progress.started_at = workflow.now()
        self._emit.run_started()
        if self._invalid:
            return self._finish("failed", self._invalid)
        if run.rerun is not None and workflow.patched(RERUN_PATCH):
            self._rerun = run.rerun
        self._base = {
            "inputs": self._inputs,
            "workflow": {"id": info.workflow_id, "run_id": info.run_id, "name": self._wf.name},
        }
        try:
            self._base["vars"] = self._render_vars()
        except EvaluationError as exc:
            return self._finish("failed", str(exc))
        self._wf_env = self._render_env({}, self._wf.env, self._base, where="env")
        refused = await self._take_run_lock()
        if refused is not None:
            return refused

        tasks = [asyncio.create_task(self._job(job_id)) for job_id in self._wf.jobs]
        cancel: asyncio.CancelledError | None = None
        timeout = self._wf.timeout
        all_done = lambda: len(self._done) == len(self._wf.jobs)  # noqa: E731
        while not all_done():
            try:
                if timeout is not None and not self._scope.cancelled:
                    elapsed = (workflow.now() - self._progress.started_at).total_seconds()
                    await workflow.wait_condition(
                        all_done, timeout=max(timeout - elapsed, 0.001), timeout_summary="run timeout"
                    )
                else:
                    await workflow.wait_condition(all_done)
            except TimeoutError:
                self._scope.cancel(scopes.TIMED_OUT)
            except asyncio.CancelledError as exc:
                cancel = exc
                self._scope.cancel(scopes.CANCELLED)
        # Every job task has returned (marking itself done is its last statement); nothing to
        # await, so a cancellation request cannot slip in between here and the compensations.
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                workflow.logger.error("job task failed: %r", task.exception())

        status: RunStatus
        error: str | None
        if cancel is not None:
            status, error = "cancelled", "the run was cancelled"
        elif self._scope.reason == scopes.TIMED_OUT:
            status = "timed_out"
            error = f"the run timed out after {format_duration(timeout or 0)}"
        else:
            failed = [j for j in self._wf.jobs if self._results.get(j) == "failure"]
            status = "failed" if failed else "succeeded"
            error = "; ".join(self._job_errors.get(j) or f"job {j} failed" for j in failed) or None

        if status != "succeeded" and self._compensations:
            # Its own task, waited for without letting a (late) cancellation request reach it:
            # compensations are what a cancellation asks for, they must not be cancelled.
            saga = asyncio.create_task(
                run_compensations(
                    self._compensations,
                    status="cancelled" if status == "cancelled" else "failure",
                    progress=self._progress.compensations,
                    listed=self._list_compensation,
                    emit=self._emit,
                )
            )
            while not saga.done():
                try:
                    await workflow.wait([saga])
                except asyncio.CancelledError as exc:
                    cancel = cancel or exc
            errors = saga.result()
            if errors:
                error = "; ".join([error or "", *errors]).lstrip("; ")
        cancel = await self._release_locks() or cancel

        result = self._finish(status, error)
        if cancel is not None:
            raise cancel
        return result

    def _list_compensation(self, entry: StepProgress) -> None:
        tree = self._trees.get((entry.job, entry.instance))
        if tree is not None:
            tree.append(entry)

    def _finish(self, status: RunStatus, error: str | None) -> RunProgress:
        error = ctx.clip(error, ctx.MAX_RUN_ERROR_CHARS)
        self._list_nested_steps()
        self._progress.status = status
        self._progress.error = error
        self._progress.finished_at = workflow.now()
        self._emit.run_finished(
            status, error, self._progress.started_at, self._progress.finished_at, progress=self._progress
        )
        # The progress is the workflow's result: it must fit in a Temporal payload.
        ctx.bound_progress(self._progress)
        if status == "failed":
            raise ApplicationError(error or "the run failed", type=ErrorCode.RUN_FAILED, non_retryable=True)
        if status == "timed_out":
            raise ApplicationError(error or "the run timed out", type=ErrorCode.RUN_TIMED_OUT, non_retryable=True)
        return self._progress

    def _render_vars(self) -> dict[str, Any]:
        rendered: dict[str, Any] = {}
        for key, value in self._wf.vars.items():
            contexts = {**self._base, "vars": rendered}
            rendered[key] = self._ev.render(value, contexts, where=f"vars.{key}")
        return rendered

    def _render_env(
        self, base: dict[str, str], templates: dict[str, str], contexts: dict[str, Any], *, where: str
    ) -> dict[str, str]:
        """The ``env`` context as workflow-side expressions see it.

        Values that read ``secrets`` or ``server`` are rendered by the agent only, so they are
        absent here; a value that fails to render is absent too (the agent reports the error
        when it renders the same text for the step).
        """
        env = dict(base)
        for key, text in templates.items():
            refs = {c for c, _ in self._ev.references(text)}
            if refs & ctx.AGENT_SIDE:
                env.pop(key, None)
                continue
            try:
                value = self._ev.render(text, {**contexts, "env": dict(base)}, where=f"{where}.{key}")
            except EvaluationError:
                env.pop(key, None)
                continue
            env[key] = value if isinstance(value, str) else json.dumps(value)
        return env

    # -- concurrency locks (ADR 0040) ----------------------------------------------------------

    def _lock_key(self, text: str, contexts: dict[str, Any], where: str) -> str:
        key = self._ev.render(text, contexts, where=where)
        return key if isinstance(key, str) else json.dumps(key)

    async def _take_run_lock(self) -> RunProgress | None:
        """Wait for the workflow-level lock; the finished run's progress when it cannot be had."""
        spec = self._wf.concurrency
        if spec is None:
            return None

        def show(waiting: LockStatus | None) -> None:
            self._progress.waiting_for_lock = waiting

        try:
            key = self._lock_key(spec.key, self._base, "concurrency.key")
            error = await self._locks.acquire(
                locks.RUN_SCOPE, key, spec.policy, show, stop=lambda: False, timeout=self._wf.timeout
            )
        except EvaluationError as exc:
            return self._finish("failed", str(exc))
        except TimeoutError:
            timeout = format_duration(self._wf.timeout or 0)
            return self._finish("timed_out", f"the run timed out after {timeout} waiting for its concurrency lock")
        except asyncio.CancelledError:
            self._finish("cancelled", "the run was cancelled while waiting for its concurrency lock")
            raise
        return self._finish("failed", error) if error else None

    async def _take_job_lock(
        self, job_id: str, job: Job, contexts: dict[str, Any], entry: JobProgress
    ) -> tuple[StepStatus, Any, str | None] | None:
        """Wait for the job's lock (released when the job ends); the job's end when it cannot be had."""
        spec = job.concurrency
        if spec is None:
            return None

        def show(waiting: LockStatus | None) -> None:
            entry.waiting_for_lock = waiting

        try:
            key = self._lock_key(spec.key, contexts, f"jobs.{job_id}.concurrency.key")
        except EvaluationError as exc:
            return "failure", {}, str(exc)
        stop = lambda: self._scope.cancelled  # noqa: E731
        error = await self._locks.acquire(locks.job_scope(job_id), key, spec.policy, show, stop=stop)
        if error is None:
            return None
        if self._scope.cancelled:
            return "cancelled", {}, None
        return "failure", {}, f"job {job_id}: {error}"

    async def _release_locks(self) -> asyncio.CancelledError | None:
        """Release the run's locks; a cancellation requested meanwhile is returned, not raised."""
        release = asyncio.create_task(self._locks.release_all())
        late: asyncio.CancelledError | None = None
        while not release.done():
            try:
                await workflow.wait([release])
            except asyncio.CancelledError as exc:
                late = late or exc
        return late

    # -- jobs ---------------------------------------------------------------------------------

    def _job_entry(self, job_id: str) -> JobProgress:
        for entry in self._progress.jobs:
            if entry.id == job_id and entry.instance is None:
                return entry
        raise KeyError(job_id)

    def _step_entries(self, job_id: str, job: Job, instance: str | None) -> list[StepProgress]:
        return [
            StepProgress(id=sid, name=step.name or "", uses=step.uses, instance=instance)
            for sid, step in zip(self._ids[job_id], job.steps, strict=True)
        ]

    async def _job(self, job_id: str) -> None:
        job = self._wf.jobs[job_id]
        entry = self._job_entry(job_id)
        try:
            await workflow.wait_condition(lambda: all(n in self._done for n in job.needs))
            result, outputs, error = await self._job_body(job_id, job, entry)
        except Exception as exc:  # noqa: BLE001 - a bug must fail the job, not wedge the workflow task
            workflow.logger.exception("internal error in job %s", job_id)
            result, outputs, error = "failure", {}, f"job {job_id}: internal error: {exc!r}"
        await self._locks.release(locks.job_scope(job_id))
        conclusion = "success" if result == "failure" and job.continue_on_error else result
        self._results[job_id] = conclusion
        self._job_outputs[job_id] = outputs
        if error:
            self._job_errors[job_id] = error
        entry.status = result
        entry.conclusion = conclusion
        entry.error = error
        if isinstance(outputs, dict):
            entry.outputs = ctx.summarize_outputs(outputs)
        if entry.started_at is not None or result != "skipped":
            entry.finished_at = workflow.now()
        if result in ("skipped", "cancelled"):
            for step in entry.steps:
                if step.status == "pending":
                    step.status = step.conclusion = result
        self._done.add(job_id)

    def _needs_context(self, job: Job) -> dict[str, Any]:
        return {
            need: {"result": self._results.get(need, "skipped"), "outputs": self._job_outputs.get(need, {})}
            for need in job.needs
        }

    async def _job_body(
        self, job_id: str, job: Job, entry: JobProgress
    ) -> tuple[StepStatus, Any, str | None]:
        status = dag.job_status(job_id, self._results, self._ancestry, run_cancelled=self._scope.cancelled)
        contexts = {**self._base, "needs": self._needs_context(job)}
        try:
            run = self._ev.condition(job.if_, contexts, status, where=f"jobs.{job_id}.if")
        except EvaluationError as exc:
            return "failure", {}, str(exc)
        if run and not self._ev.uses_status(job.if_):
            run = dag.needs_succeeded(job, self._results)
        if not run:
            return ("cancelled" if status == "cancelled" else "skipped"), {}, None
        refused = await self._take_job_lock(job_id, job, contexts, entry)
        if refused is not None:
            return refused

        entry.status = "running"
        entry.started_at = workflow.now()
        try:
            instances = await self._instances(job_id, job, contexts)
        except (EvaluationError, FanoutError) as exc:
            return "failure", {}, f"job {job_id}: {exc}"
        if not instances:  # cancelled while waiting for each-server's agents
            return "cancelled", {}, None
        # A job admitted after the run was cancelled (its `if` used always() or cancelled())
        # is a cleanup job: it runs its steps normally, in a scope of its own.
        parent = scopes.Scope() if self._scope.cancelled else self._scope
        if len(instances) == 1 and instances[0][0].label is None:
            instance, group = instances[0]
            entry.runs_on = group
            outcome = await self._instance(_Place(job_id, job, instance, group), parent.child(), entry)
            return outcome.result, outcome.outputs, outcome.error
        return await self._fanout(job_id, job, instances, entry, parent)

    async def _instances(
        self, job_id: str, job: Job, contexts: dict[str, Any]
    ) -> list[tuple[Instance, str]]:
        """The job's instances with their rendered ``runs-on`` group."""
        strategy = job.strategy
        if strategy is None or (strategy.matrix is None and not strategy.each_server):
            group = self._render_group(job_id, job, {**contexts, "matrix": {}})
            return [(Instance(label=None), group)]
        combos: list[dict[str, Any]] = [{}]
        if strategy.matrix is not None:
            matrix = self._ev.render(strategy.matrix, contexts, where=f"jobs.{job_id}.strategy.matrix")
            combos = expand_matrix(matrix)
        pairs: list[tuple[str | None, dict[str, Any]]] = []
        groups: list[str] = []
        reachable: list[bool] = []
        servers_of: dict[str, list[tuple[str, bool]]] = {}
        for combo in combos:
            group = self._render_group(job_id, job, {**contexts, "matrix": combo})
            if not strategy.each_server:
                pairs.append((None, combo))
                groups.append(group)
                reachable.append(True)
                continue
            if group not in servers_of:
                servers_of[group] = await self._servers_waiting(group, strategy.wait_for_agents)
            for server, live in servers_of[group]:
                pairs.append((server, combo))
                groups.append(group)
                reachable.append(live)
        instances = [
            inst if live or self._reused_whole(job_id, inst.label) else replace(inst, reachable=False)
            for inst, live in zip(label_instances(pairs), reachable, strict=True)
        ]
        return list(zip(instances, groups, strict=True))

    def _server_context(self, server: str | None) -> dict[str, Any]:
        """The workflow side's ``server`` of an each-server instance: its name and provider vars."""
        if not server:
            return {}
        variables = self._server_vars.get(server)
        return {"name": server, "vars": variables} if variables else {"name": server}

    def _render_group(self, job_id: str, job: Job, contexts: dict[str, Any]) -> str:
        group = self._ev.render(job.runs_on, contexts, where=f"jobs.{job_id}.runs-on")
        if not isinstance(group, str) or not group.strip():
            raise EvaluationError(f"jobs.{job_id}.runs-on: expected a group name, got {group!r}")
        return group

    async def _servers_waiting(self, group: str, wait: float | None) -> list[tuple[str, bool]]:
        """The group's servers with their ``live`` flag, waiting up to ``wait`` seconds for a live one.

        Agents that just started may not be listed yet (the registry is read through Temporal's
        visibility, which lags a little): a run submitted as they report ready waits for them.
        """
        listed = await self._servers(group)
        if self._limit is not None and not listed:
            raise FanoutError(f"each-server: --limit {','.join(self._limit)} matches no server of group '{group}'")
        live = lambda: any(ok for _, ok in listed)  # noqa: E731
        if live() or not workflow.patched(WAIT_FOR_AGENTS_PATCH):
            if not live():
                raise FanoutError(f"each-server: no live agent in group '{group}'")
            return listed
        grace = DEFAULT_WAIT_FOR_AGENTS if wait is None else wait
        started = workflow.now()
        while not live():
            left = grace - (workflow.now() - started).total_seconds()
            if left <= 0:
                raise FanoutError(
                    f"each-server: no live agent in group '{group}' after waiting "
                    f"{format_duration(grace)} (strategy.wait-for-agents)"
                )
            cancelled = lambda: self._scope.cancelled  # noqa: E731
            try:
                await workflow.wait_condition(
                    cancelled, timeout=min(AGENT_POLL_INTERVAL, left), timeout_summary=f"waiting for agents of {group}"
                )
            except TimeoutError:
                listed = await self._servers(group)
            else:
                return []  # the run was cancelled or timed out: no instance to run
        return listed

    async def _servers(self, group: str) -> list[tuple[str, bool]]:
        """The group's servers, each with whether it has a live agent, sorted by name.

        Runs recorded before issue 14 asked for the live ones only (the others were left out).
        """
        every = workflow.patched(UNREACHABLE_PATCH)
        retry = RetryPolicy(maximum_attempts=5, initial_interval=timedelta(seconds=1))
        try:
            if every and workflow.patched(LOCAL_SERVERS_PATCH):
                # On this worker, next to the provider: no matching round trip, no extra
                # workflow task before the fan-out (ADR 0047).
                answer = await workflow.execute_local_activity(
                    SERVERS_ACTIVITY,
                    ServersRequest(group=group, limit=self._limit),
                    result_type=list[ListedServer],
                    start_to_close_timeout=timedelta(seconds=30),
                    schedule_to_close_timeout=SERVERS_DEADLINE,
                    retry_policy=retry,
                    summary=f"live agents of {group}",
                )
            else:
                answer = await workflow.execute_activity(
                    SERVERS_ACTIVITY,
                    ServersRequest(group=group, limit=self._limit) if every else group,
                    result_type=list[ListedServer] if every else list[str],
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=retry,
                    summary=f"live agents of {group}",
                )
        except (ActivityError, ApplicationError) as exc:
            # The provider failed (a bad inventory, a registry it cannot read): the job fails
            # saying so, instead of an internal error. A local activity's final failure is the
            # provider's ApplicationError itself; a timeout still comes as an ActivityError.
            if isinstance(exc, ApplicationError):
                reason = exc.message
            else:
                reason = exc.cause.message if isinstance(exc.cause, FailureError) else str(exc)
            raise FanoutError(f"each-server: cannot list the servers of group '{group}': {reason}") from None
        if every:
            for server in answer:
                if server.vars:
                    self._server_vars[server.name] = server.vars
            return sorted((server.name, server.live) for server in answer)
        return [(name, True) for name in sorted(answer)]

    async def _fanout(
        self,
        job_id: str,
        job: Job,
        instances: list[tuple[Instance, str]],
        entry: JobProgress,
        parent: scopes.Scope,
    ) -> tuple[StepStatus, Any, str | None]:
        assert job.strategy is not None
        limit = job.strategy.max_parallel or len(instances)
        strategy = job.strategy
        job_scope = parent.child()
        index = self._progress.jobs.index(entry)
        entries: list[JobProgress] = []
        for offset, (instance, group) in enumerate(instances, start=1):
            sub = JobProgress(
                id=job_id,
                name=entry.name,
                instance=instance.label,
                runs_on=personal_queue(instance.server) if instance.server else group,
                steps=self._step_entries(job_id, job, instance.label),
            )
            self._progress.jobs.insert(index + offset, sub)
            entries.append(sub)
        results: list[_InstanceResult | None] = [None] * len(instances)
        running = 0

        async def one(position: int, instance: Instance, group: str, scope: scopes.Scope) -> None:
            nonlocal running
            try:
                place = _Place(job_id, job, instance, group)
                outcome = await self._instance(place, scope, entries[position])
            finally:
                running -= 1
            results[position] = outcome
            if outcome.result == "failure" and self._fail_fast(strategy):
                job_scope.cancel(scopes.FAIL_FAST)

        # Without `batch` the job is one batch: the same commands as before batches existed.
        batched = strategy.batch is not None and workflow.patched(BATCHES_PATCH)
        sizes = batch_sizes(strategy.batch if batched else None, len(instances))
        what = "servers" if strategy.each_server and strategy.matrix is None else "instances"
        if batched:
            numbers = [number for number, size in enumerate(sizes, start=1) for _ in range(size)]
            for sub, number in zip(entries, numbers, strict=True):
                sub.batch = number
        stopped: str | None = None
        start = 0
        for number, size in enumerate(sizes, start=1):
            tasks = []
            for position in range(start, start + size):
                instance, group = instances[position]
                sub = entries[position]
                if not instance.reachable and not job_scope.cancelled:
                    results[position] = self._unreachable(instance, group, sub)
                    if self._fail_fast(strategy):
                        job_scope.cancel(scopes.FAIL_FAST)
                    continue
                await workflow.wait_condition(lambda: running < limit)  # noqa: B023 - the live count
                if job_scope.cancelled:
                    self._not_started(sub, "cancelled")
                    results[position] = _InstanceResult("cancelled")
                    continue
                running += 1
                tasks.append(asyncio.create_task(one(position, instance, group, job_scope.child())))
            await asyncio.gather(*tasks)
            start += size
            failed = sum(1 for r in results[:start] if r is not None and r.result == "failure")
            if batched and start < len(instances) and not job_scope.cancelled and budget_exceeded(
                failed, start, strategy.max_fail_percentage
            ):
                stopped = (
                    f"stopped after batch {number} of {len(sizes)}: {failed} of the {start} {what} started "
                    f"failed, more than max-fail-percentage {strategy.max_fail_percentage:g}%; "
                    f"{len(instances) - start} {what} not started"
                )
                break
        for position in range(start, len(instances)):
            self._not_started(entries[position], "skipped", f"not started: the job {stopped}")
            results[position] = _InstanceResult("skipped")

        done = [r for r in results if r is not None]
        outputs = [r.outputs for r in done]
        errors = [r.error for r in done if r.error and r.result == "failure"]
        if any(r.result == "failure" for r in done):
            message = "; ".join(errors)
            if strategy.each_server:
                pairs = zip(instances, results, strict=True)
                failed_labels = [str(i.label) for (i, _), r in pairs if r is not None and r.result == "failure"]
                shown = ", ".join(failed_labels[:20]) + (
                    f", … ({len(failed_labels) - 20} more)" if len(failed_labels) > 20 else ""
                )
                head = f"job {job_id} failed on {len(failed_labels)} of {len(instances)} {what} ({shown})"
                if stopped:
                    head += f"; {stopped}"
                message = f"{head}: {message}"
            elif stopped:
                message = f"job {job_id} {stopped}: {message}"
            return "failure", outputs, ctx.clip(message, ctx.MAX_RUN_ERROR_CHARS) or f"job {job_id} failed"
        if any(r.result == "cancelled" for r in done):
            return "cancelled", outputs, None
        return "success", outputs, None

    @staticmethod
    def _not_started(entry: JobProgress, status: StepStatus, reason: str | None = None) -> None:
        """Mark an instance (and its steps) that never started: fail-fast, or the budget spent."""
        entry.status = entry.conclusion = status
        entry.error = reason
        for step in entry.steps:
            step.status = step.conclusion = status

    def _unreachable(self, instance: Instance, group: str, entry: JobProgress) -> _InstanceResult:
        """An instance whose server has no live agent: it fails at once, its steps not run."""
        error = f"server {instance.server} has no live agent (group {group})"
        now = workflow.now()
        entry.started_at = entry.finished_at = now
        self._not_started(entry, "skipped")
        entry.status = entry.conclusion = "failure"
        entry.error = error
        return _InstanceResult("failure", {}, error)

    @staticmethod
    def _fail_fast(strategy: Strategy) -> bool:
        if strategy.fail_fast is not None or not strategy.each_server:
            return strategy.cancels_siblings
        # Runs recorded before each-server finished every server cancelled the others.
        return not workflow.patched(FINISH_EVERY_SERVER_PATCH)

    # -- one job instance: its steps ----------------------------------------------------------

    async def _instance(self, place: _Place, scope: scopes.Scope, entry: JobProgress) -> _InstanceResult:
        job_id, job, instance = place.job_id, place.job, place.instance
        entry.status = "running"
        entry.started_at = workflow.now()
        watchdog: asyncio.Task[None] | None = None
        if job.timeout is not None:
            watchdog = asyncio.create_task(self._watchdog(scope, job.timeout, place.path, scopes.JOB_TIMEOUT))

        needs = self._needs_context(job)
        matrix = instance.matrix
        job_contexts = {**self._base, "needs": needs, "matrix": matrix}
        job_env = self._render_env(self._wf_env, job.env, job_contexts, where=f"jobs.{job_id}.env")
        frame = _Frame(
            place=place,
            scope=scope,
            steps=job.steps,
            ids=self._ids[job_id],
            entries=list(entry.steps),
            where=f"jobs.{job_id}.steps",
            contexts=job_contexts,
            env=job_env,
            env_levels=(self._wf.env, job.env),
            server=self._server_context(instance.server),
            tree=StepTree(entry),
        )
        self._trees[(job_id, instance.label)] = frame.tree
        failed = await self._run_steps(frame)

        if watchdog is not None and not watchdog.done():
            watchdog.cancel()

        outputs: dict[str, Any] = {}
        contexts = {**job_contexts, "steps": frame.results, "env": job_env, "server": dict(frame.server)}
        for key, text in job.outputs.items():
            try:
                outputs[key] = self._ev.render(text, contexts, where=f"jobs.{job_id}.outputs.{key}")
            except EvaluationError as exc:
                failed = failed or str(exc)
        entry.outputs = ctx.summarize_outputs(outputs)
        entry.finished_at = workflow.now()

        if scope.reason == scopes.JOB_TIMEOUT:
            error = f"job {place.path} timed out after {format_duration(job.timeout or 0)}"
            if frame.running.step:
                error += f" (in step {frame.running.step})"
            result = _InstanceResult("failure", outputs, error)
        elif failed:
            result = _InstanceResult("failure", outputs, failed)
        elif scope.cancelled:
            result = _InstanceResult("cancelled", outputs)
        else:
            result = _InstanceResult("success", outputs)
        entry.status = entry.conclusion = result.result
        entry.error = result.error
        if self._rerun is not None and result.result == "success" and self._reused_whole(job_id, instance.label):
            entry.status, entry.succeeded_in = "skipped", self._rerun.of
        return result

    async def _watchdog(self, scope: scopes.Scope, seconds: float, path: str, reason: str) -> None:
        what = "job" if reason == scopes.JOB_TIMEOUT else "step"
        await workflow.sleep(seconds, summary=f"timeout of {what} {path}")
        scope.cancel(reason)

    async def _run_steps(self, frame: _Frame) -> str | None:
        """Run a list of steps in order: a job instance's, or those a flow step runs.

        Each step's ``if`` sees the list's status so far (``failure`` after a failed step,
        ``cancelled`` once the scope is); ``frame.results`` collects the ``steps`` context.
        Returns the first failure's message (None when every step concluded ``success``).
        """
        job_id = frame.place.job_id
        failed: str | None = None  # first failure message of this list
        for index, (sid, step) in enumerate(zip(frame.ids, frame.steps, strict=True)):
            if frame.parent is not None or step.flow is not None:
                if frame.parent is not None:
                    self._load.steps += 1
                await self._load.pace()
            sp = frame.entries[index]
            reused = self._reused(frame, sid)
            if reused is not None:
                self._skip_reused(frame, path=frame.prefix + sid, sid=sid, sp=sp, reused=reused)
                continue
            scope = frame.scope
            status: ConditionStatus = "cancelled" if scope.cancelled else ("failure" if failed else "success")
            where = f"{frame.where}[{index}]"
            env = self._render_env(
                frame.env, step.env, {**frame.contexts, "steps": frame.results}, where=f"{where}.env"
            )
            contexts = {**frame.contexts, "steps": frame.results, "env": env, "server": dict(frame.server)}
            path = frame.prefix + sid
            try:
                run = self._ev.condition(step.if_, contexts, status, where=f"{where}.if")
            except EvaluationError as exc:
                outcome = _StepOutcome("failure", error=str(exc))
            else:
                if not run:
                    # Not run because the job was cancelled reads "cancelled" in progress; the
                    # steps context says "skipped" either way, as GitHub's does.
                    sp.status = sp.conclusion = "cancelled" if status == "cancelled" else "skipped"
                    frame.results[sid] = ctx.step_entry({}, "skipped", "skipped", "")
                    self._concluded(frame, sp)
                    self._emit.step_finished(job_id, sp, step_path(job_id, path, frame.place.instance.label))
                    continue
                frame.running.step = step_path(job_id, path)
                # A check run descends into the flow steps that run lists (their steps are
                # checked or skipped in turn); any other step runs its check or nothing.
                checking = self._check_run and not nested_step_lists(step)
                if checking and step.check is None:
                    self._skip_unchecked(frame, path=path, sid=sid, sp=sp)
                    continue
                if checking:
                    call = self._step_call(frame, path, sid, step, contexts, status, check=True)
                    sp.name, sp.reason = call.task.name, CHECK_RAN
                    self._emit.step_started(job_id, sp, call.path)
                    outcome = await self._step(call, scope, sp)
                # Runs recorded before flow nodes existed scheduled any `uses` as an activity.
                elif step.flow is not None and workflow.patched(FLOW_PATCH):
                    outcome = await self._flow(frame, index, sid, step, contexts, status, sp)
                else:
                    call = self._step_call(frame, path, sid, step, contexts, status)
                    sp.name = call.task.name
                    self._emit.step_started(job_id, sp, call.path)
                    outcome = await self._step(call, scope, sp)
            if outcome.outcome == "cancelled" and not scope.cancelled:
                # Cancelled by someone else than this run (e.g. the activity was cancelled
                # from outside): the step did not do its work, which is a failure here.
                outcome.outcome = "failure"
            conclusion = outcome.outcome
            if outcome.outcome == "failure" and step.continue_on_error:
                conclusion = "success"
            sp.status = outcome.outcome
            sp.conclusion = conclusion
            sp.error = outcome.error
            if sp.finished_at is None:
                sp.finished_at = workflow.now()
            frame.results[sid] = ctx.step_entry(outcome.outputs, outcome.outcome, conclusion, outcome.agent)
            self._concluded(frame, sp)
            self._emit.step_finished(job_id, sp, step_path(job_id, path, frame.place.instance.label))
            if outcome.agent:
                frame.server = self._server_context(frame.place.instance.server) or {"name": outcome.agent}
            if conclusion == "failure" and not failed:
                failed = outcome.error or f"step {step_path(job_id, path)} failed"
            if outcome.outcome == "success" and step.compensate is not None and not self._check_run:
                after = {**contexts, "steps": dict(frame.results)}
                agent = frame.place.instance.server or outcome.agent
                self._compensations.append(self._compensation_call(
                    frame, path, step, display=sp.name or sid, agent=agent, contexts=after
                ))
        return failed

    def _reused(self, frame: _Frame, sid: str) -> ReusedStep | None:
        """The recorded success a rerun reuses instead of running step ``sid`` (a job's own steps only)."""
        if self._rerun is None or frame.parent is not None:
            return None
        return self._rerun.reused(frame.place.job_id, frame.place.instance.label, sid)

    def _reused_whole(self, job_id: str, label: str | None) -> bool:
        return self._rerun is not None and self._rerun.whole(job_id, label, self._ids[job_id])

    def _skip_reused(self, frame: _Frame, *, path: str, sid: str, sp: StepProgress, reused: ReusedStep) -> None:
        """Report a step a rerun skips: its outputs are those it recorded; it is never compensated here."""
        job_id = frame.place.job_id
        sp.status, sp.conclusion = "skipped", reused.conclusion
        sp.succeeded_in = reused.run if reused.outcome != "skipped" else None
        sp.outputs, sp.agent = dict(reused.outputs), reused.agent
        frame.results[sid] = ctx.step_entry(reused.outputs, reused.outcome, reused.conclusion, reused.agent)
        self._emit.step_finished(job_id, sp, step_path(job_id, path, frame.place.instance.label))

    def _skip_unchecked(self, frame: _Frame, *, path: str, sid: str, sp: StepProgress) -> None:
        """Report a step a check run skips: it has no ``check:`` (ADR 0041)."""
        job_id = frame.place.job_id
        sp.status = sp.conclusion = "skipped"
        sp.reason = CHECK_RUN
        frame.results[sid] = ctx.step_entry({}, "skipped", "skipped", "")
        self._concluded(frame, sp)
        self._emit.step_finished(job_id, sp, step_path(job_id, path, frame.place.instance.label))

    def _concluded(self, frame: _Frame, sp: StepProgress) -> None:
        if frame.parent is not None:  # a nested step: its entry counts against the progress budget
            self._nested_entries.finished(frame.tree, sp)

    def _step_call(
        self,
        frame: _Frame,
        path: str,
        sid: str,
        step: Step,
        contexts: dict[str, Any],
        status: ConditionStatus,
        *,
        check: bool = False,
    ) -> StepCall:
        """The activity call of ``step``, or with ``check`` of its ``check:`` (a check run)."""
        place = frame.place
        action: Step | Check = step.check if check and step.check is not None else step
        env = ctx.merged_env(*frame.env_levels, step.env, *([action.env] if action is not step else []))
        refs = [*self._ev.references(action.with_), *self._ev.references(env)]
        name = self._display_name(step, sid, contexts, status)
        if isinstance(action, Check):
            name = self._check_name(action, contexts, status) or f"check {name}"
        task = StepTask(
            workflow_id=self._run_id(),
            job=place.job_id,
            step=path,
            instance=place.instance.label,
            name=name,
            node=action.uses,
            with_=action.with_,
            env=env,
            contexts=ctx.select(contexts, refs),
            status=status,
            run_as=step.run_as,
        )
        options = activity_options(
            timeout=action.timeout,
            heartbeat_timeout=step.heartbeat_timeout,
            retry=action.retry,
            defaults=self._wf.defaults,
        )
        pickup: timedelta | None = None
        if place.instance.server and workflow.patched(PICKUP_PATCH):
            # Only this server's agent polls its queue: an agent that died after the servers
            # were listed must fail the step, not leave it waiting for the run's timeout.
            pickup = timedelta(seconds=min(options.timeout_seconds, MAX_PICKUP))
        return StepCall("step", task, options, queue=place.queue, pickup=pickup)

    async def _step(self, call: StepCall, scope: scopes.Scope, sp: StepProgress) -> _StepOutcome:
        outcome = await launch(call, sp, scope)
        if isinstance(outcome, StepFailure):
            sp.timed_out = outcome.timed_out and outcome.outcome == "failure"
            return _StepOutcome(outcome.outcome, {}, outcome.agent, outcome.message)
        return _StepOutcome("success", dict(outcome.outputs), outcome.agent)

    def _check_name(self, check: Check, contexts: dict[str, Any], status: str) -> str:
        if not check.name:
            return ""
        try:
            return str(self._ev.render(check.name, contexts, status, where="check.name"))
        except EvaluationError:
            return check.name

    def _display_name(self, step: Step, sid: str, contexts: dict[str, Any], status: str) -> str:
        if step.name:
            try:
                name = self._ev.render(step.name, contexts, status, where="name")
            except EvaluationError:
                name = step.name
            return str(name)
        return sid if step.id else step.uses

    def _compensation_call(
        self, frame: _Frame, path: str, step: Step, *, display: str, agent: str, contexts: dict[str, Any]
    ) -> StepCall:
        """The call that undoes ``step`` (which succeeded on ``agent``), captured now, run later.

        ``contexts`` are the step's own plus its result, so the compensation can read its outputs.
        """
        compensate = step.compensate
        assert compensate is not None
        place = frame.place
        env = ctx.merged_env(*frame.env_levels, compensate.env)
        refs = [*self._ev.references(compensate.with_), *self._ev.references(env)]
        task = StepTask(
            workflow_id=self._run_id(),
            job=place.job_id,
            step=compensation_step_id(path),
            instance=place.instance.label,
            name=compensate.name or f"compensate {display}",
            node=compensate.uses,
            with_=compensate.with_,
            env=env,
            contexts=ctx.select(contexts, refs),
            run_as=step.run_as,
        )
        options = activity_options(
            timeout=compensate.timeout, heartbeat_timeout=None, retry=compensate.retry, defaults=self._wf.defaults
        )
        if not agent:
            return StepCall("compensation", task, options, queue=place.group)
        return StepCall("compensation", task, options, queue=personal_queue(agent), fallback=place.group)

    # -- flow nodes (run here, not on agents: ADR 0021) ----------------------------------------

    async def _flow(
        self,
        frame: _Frame,
        index: int,
        sid: str,
        step: Step,
        contexts: dict[str, Any],
        status: ConditionStatus,
        sp: StepProgress,
    ) -> _StepOutcome:
        assert step.flow is not None
        path = frame.prefix + sid
        call_path = step_path(frame.place.job_id, path, frame.place.instance.label)
        sp.name = self._display_name(step, sid, contexts, status)
        sp.status = "running"
        sp.started_at = workflow.now()
        self._emit.step_started(frame.place.job_id, sp, call_path)
        # A flow step admitted after its list was cancelled (`if: always()`) runs to its end, as
        # an activity would; only its own timeout can stop it.
        scope = frame.scope.child() if not frame.scope.cancelled else scopes.Scope()
        watchdog: asyncio.Task[None] | None = None
        if step.timeout is not None:
            watchdog = asyncio.create_task(self._watchdog(scope, step.timeout, call_path, scopes.STEP_TIMEOUT))
        where = f"{frame.where}[{index}]"
        run = self._nested_runner(frame, sp, scope, step.env, contexts, where, path)

        call = flow.FlowCall(
            flow=step.flow,
            path=call_path,
            where=where,
            contexts=contexts,
            status=status,
            scope=scope,
            ev=self._ev,
            run=run,
            load=self._load,
            chunked=lambda call, loop, items, done: self._chunks(frame, sid, step, sp, call, loop, items, done),
        )
        try:
            if isinstance(step.flow, FlowApprovalWith):
                result = await self._gate(frame, sid, step.flow, call, sp)
            else:
                result = await flow.run_flow(call)
        except (flow.FlowError, approval.GateError, EvaluationError) as exc:
            result = flow.FlowOutcome("failure", {}, str(exc))
        finally:
            if watchdog is not None and not watchdog.done():
                watchdog.cancel()
        if scope.reason == scopes.STEP_TIMEOUT:
            result.outcome = "failure"
            sp.timed_out = True
            result.error = f"step {call_path} timed out after {format_duration(step.timeout or 0)}"
        sp.outputs = ctx.summarize_outputs(result.outputs)
        sp.log_tail = ctx.tail(result.log)
        sp.finished_at = workflow.now()
        return _StepOutcome(result.outcome, result.outputs, "", ctx.clip(result.error, ctx.MAX_ERROR_CHARS))

    def _nested_runner(
        self,
        frame: _Frame,
        sp: StepProgress,
        scope: scopes.Scope,
        step_env: dict[str, str],
        contexts: dict[str, Any],
        where: str,
        path: str,
    ) -> flow.RunNested:
        """How the flow step ``sp`` (at ``path``, in ``frame``) runs its nested lists of steps."""
        nested_ids: dict[int, list[str]] = {}

        async def run(steps: list[Step], key: str, label: str, loop: dict[str, Any] | None) -> flow.Nested:
            ids = nested_ids.get(id(steps))
            if ids is None:
                ids = nested_ids[id(steps)] = dag.step_ids(steps, reserved=frame.results)
            prefix = f"{path}{label}/"
            if len(prefix) > flow.MAX_NESTED_PREFIX:
                raise flow.FlowError(
                    f"{where}: its steps are nested too deep: their paths would pass Temporal's "
                    f"limit on activity ids ({len(prefix)} characters before a step's id, at most "
                    f"{flow.MAX_NESTED_PREFIX}); use shorter ids or fewer levels"
                )
            entries = [
                StepProgress(id=prefix + nid, name=s.name or "", uses=s.uses, instance=frame.place.instance.label)
                for nid, s in zip(ids, steps, strict=True)
            ]
            frame.tree.add(sp, entries)
            child = replace(
                frame,
                scope=scope,
                steps=steps,
                ids=ids,
                entries=entries,
                prefix=prefix,
                where=f"{where}.with.{key}",
                contexts={**frame.contexts, "loop": loop} if loop is not None else frame.contexts,
                env=contexts["env"],
                env_levels=(*frame.env_levels, step_env),
                results=dict(frame.results),
                server=dict(frame.server),
                parent=sp,
            )
            failed = await self._run_steps(child)
            own = {nid: child.results[nid] for nid in ids if nid in child.results}
            return flow.Nested(failed, own, child.results)

        return run

    async def _chunks(
        self,
        frame: _Frame,
        sid: str,
        step: Step,
        sp: StepProgress,
        call: flow.FlowCall,
        loop: FlowLoopWith,
        items: list[Any],
        done: flow.Iterations,
    ) -> flow.FlowOutcome:
        """Run a loop's items after those ``done`` ran in child workflows (ADR 0030)."""
        place = frame.place
        own = {"id": sid, "uses": step.uses, "env": step.env, "with": {**step.with_, "items": []}}
        defaults = self._wf.defaults.model_dump(mode="json", by_alias=True, exclude_unset=True)
        spec = chunks.ChunkInput(
            run=RunInput(workflow={
                "name": self._wf.name,
                "defaults": defaults,
                "jobs": {place.job_id: {"runs-on": place.group, "steps": [own]}},
            }, check=self._check_run),
            root=self._run_id(),
            path=frame.prefix + sid,
            where=call.where,
            instance=place.instance.label,
            server=place.instance.server,
            contexts=call.contexts,
            env_levels=list(frame.env_levels),
        )

        def show(lines: list[str]) -> None:
            sp.log_tail = ctx.tail(lines)

        return await chunks.run_chunks(call, loop, items, spec, done, adopt=self._compensations.extend, show=show)

    def _run_id(self) -> str:
        """The run's workflow id, as its steps' tasks carry it (a chunk's is its run's)."""
        return workflow.info().workflow_id

    async def _gate(
        self, frame: _Frame, sid: str, gate: FlowApprovalWith, call: flow.FlowCall, sp: StepProgress
    ) -> flow.FlowOutcome:
        """Run a ``flow/approval`` step: wait for its signal (ADR 0029)."""
        job_id = frame.place.job_id

        def show(waiting: WaitingFor | None) -> None:
            sp.waiting = waiting
            if waiting is not None:
                self._emit.step_waiting(job_id, sp, call.path)

        outcome = await approval.wait_for_answer(
            approval.GateCall(
                flow=gate,
                step_id=sid,
                path=call.path,
                where=call.where,
                contexts=call.contexts,
                status=call.status,
                scope=call.scope,
                ev=self._ev,
                gates=self._gates,
                show=show,
            )
        )
        return flow.FlowOutcome(outcome.outcome, outcome.outputs, outcome.error, outcome.log)
