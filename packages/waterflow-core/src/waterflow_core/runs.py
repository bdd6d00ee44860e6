"""The contract of the interpreter workflow ``WaterflowRun``: its input, progress query and result.

The server plans a run once (:meth:`RunInput.plan`: inputs typed, workflow dumped), starts it
with that snapshot and reads :class:`RunProgress` through the ``progress`` query (or from the
result once closed); nothing about a run is stored elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from .rerun import Rerun

if TYPE_CHECKING:
    from .dsl.models import Workflow

WORKFLOW_TYPE = "WaterflowRun"
PROGRESS_QUERY = "progress"
GATES_QUERY = "gates"
"""Query answering the approval gates a run waits at now (a list of :class:`WaitingFor`)."""
SIGNAL = "waterflow.signal"
"""The one Temporal signal of a run; its :class:`SignalPayload` names the gate's signal."""
SERVER_TASK_QUEUE = "waterflow-server"
"""Task queue of the interpreter workflow worker hosted by ``waterflow server``."""

NAME_MEMO = "name"
"""Memo key of a run's workflow name (set at start; listings read it without a query)."""
CHECK_MEMO = "check"
"""Memo key set (true) on a check run (``RunInput.check``), so listings mark it without a query."""
CHECK_RUN = "check run"
"""The ``reason`` of a step a check run skipped for having no ``check:``."""
CHECK_RAN = "ran its check"
"""The ``reason`` of a step that ran its ``check:`` instead of itself (a check run)."""

RunStatus = Literal["running", "succeeded", "failed", "cancelled", "timed_out"]
StepStatus = Literal["pending", "running", "success", "failure", "skipped", "cancelled"]
"""Status of a step or job (an instance's ``result`` and ``needs.<job>.result`` use these too)."""
ConditionStatus = Literal["success", "failure", "cancelled"]
"""What ``success()``/``failure()``/``cancelled()`` read: the state of the job so far."""


class RunInput(BaseModel):
    """Everything a run needs, snapshotted at submit time so it never changes under the run.

    The one contract between the server (which plans it), :func:`~.interpreter.start_run` and
    the workflow: build it with :meth:`plan`.
    """

    workflow: dict[str, Any]
    """The validated workflow, dumped by alias (kebab-case keys) in JSON mode with
    ``exclude_unset=True``: a step's ``retry`` overrides only the keys it sets, so the keys it
    did not set must stay absent."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    """The inputs, checked and typed against the workflow's ``inputs:``."""
    source: str = ""
    """The workflow text as submitted, for display."""
    rerun: Rerun | None = None
    """Set on a rerun: the run it reruns and the steps it skips (ADR 0039)."""
    limit: list[str] | None = None
    """``--limit``: the patterns each-server jobs keep their servers by (:mod:`waterflow_core.limit`)."""
    check: bool = False
    """A check run (``--check``): steps with ``check:`` run it instead, the others are skipped
    and no compensation runs (ADR 0041)."""

    @classmethod
    def plan(cls, workflow: Workflow, inputs: Mapping[str, Any] | None = None, *, source: str = "") -> RunInput:
        """The snapshot of a run of ``workflow`` (already validated) with ``inputs``.

        Raises :class:`~waterflow_core.errors.WorkflowValidationError` listing each unknown,
        missing or mistyped input.
        """
        from .dsl.inputs import resolve_inputs  # the DSL is only needed where runs are planned

        return cls(
            workflow=workflow.model_dump(mode="json", by_alias=True, exclude_unset=True),
            inputs=resolve_inputs(workflow, dict(inputs or {})),
            source=source,
        )

    @property
    def name(self) -> str:
        """The workflow's ``name``."""
        return str(self.workflow.get("name", ""))

    @property
    def description(self) -> str:
        """The workflow's ``description`` (empty when it has none)."""
        return str(self.workflow.get("description") or "")

    @property
    def timeout(self) -> float | None:
        """The whole run's ``timeout`` in seconds, if the workflow sets one."""
        value = self.workflow.get("timeout")
        return float(value) if isinstance(value, int | float) else None


class WaitingFor(BaseModel):
    """What a waiting ``flow/approval`` step waits for: how to answer it, and who may."""

    step: str
    """``job/step[#instance]``."""
    signal: str
    approvers: list[str] = Field(default_factory=list)
    """API token names that may answer; empty: any operator token."""
    message: str = ""
    deadline: datetime | None = None
    """When the gate fails unanswered (None: no ``timeout``)."""
    inputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """The typed fields of the answer's ``data`` (``type``, ``required``, ``description``, ``options``, ``default``)."""
    refused: list[str] = Field(default_factory=list)
    """Why signals for this gate were ignored (wrong approver, mistyped data), the last 10."""


class LockStatus(BaseModel):
    """A ``concurrency:`` lock a run waits for or holds (ADR 0040)."""

    key: str
    """The rendered ``concurrency.key``."""
    policy: str = "queue"
    holder: str = ""
    """The run holding the lock: when waiting, the one that held it when this run asked
    (empty when it was free or still unknown); when held, this run."""
    since: datetime | None = None
    """When the run asked (waiting) or got the lock (held)."""
    scope: str = "workflow"
    """``workflow`` (the whole run) or ``job:<id>``."""


class SignalPayload(BaseModel):
    """The payload of :data:`SIGNAL`: an answer to the gates waiting for ``name``."""

    name: str
    decision: str = "approve"
    """``approve`` or ``reject``."""
    data: dict[str, Any] = Field(default_factory=dict)
    by: str = ""
    """The name of the API token that sent it (empty when the API has no tokens)."""


class StepProgress(BaseModel):
    """State of one step (one activity, or one per fan-out instance)."""

    id: str
    name: str = ""
    uses: str = ""
    instance: str | None = None
    job: str = ""
    """The job id (set on compensations, which are listed run-wide)."""
    status: StepStatus = "pending"
    conclusion: StepStatus | None = None
    """``status`` after ``continue-on-error`` (a failed step that may fail concludes ``success``)."""
    attempt: int = 0
    """Attempts made, when known (0 = unknown; failures after retries always know it)."""
    agent: str = ""
    queue: str = ""
    """The task queue the activity was scheduled on (``runs-on`` group or ``agent:<name>``)."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    log_tail: list[str] = Field(default_factory=list)
    attempt_errors: list[str] = Field(default_factory=list)
    """The errors of the attempts before the last one, oldest first (a retried step; bounded:
    the last 10, each cut at 500 characters), when the agent reports them."""
    waiting: WaitingFor | None = None
    """Set while a ``flow/approval`` step waits for its signal."""
    timed_out: bool = False
    """The step failed because a timeout fired: its own ``timeout``, a flow step's, or no agent
    picking it up in time; an agent that stopped heartbeating is a plain failure."""
    succeeded_in: str | None = None
    """Set on a step a rerun skipped (``status`` skipped, ``conclusion`` success): the run it
    succeeded in, whose recorded outputs it carries (ADR 0039)."""
    reason: str | None = None
    """In a check run (ADR 0041): ``check run`` on a step skipped for having no ``check:``,
    ``ran its check`` on one that ran its ``check:`` instead of itself."""


class JobProgress(BaseModel):
    """State of one job (or one fan-out instance of it)."""

    id: str
    name: str = ""
    instance: str | None = None
    """Fan-out instance label; every fan-out job also has one entry with ``instance=None`` that
    aggregates its instances (and lists no steps)."""
    status: StepStatus = "pending"
    conclusion: StepStatus | None = None
    """``status`` after the job's ``continue-on-error``: what ``needs.<job>.result`` reads."""
    runs_on: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: list[StepProgress] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    batch: int | None = None
    """The rolling batch (1, 2, ...) of a fan-out instance when its job has ``strategy.batch``."""
    succeeded_in: str | None = None
    """Set when a rerun skipped every step of this instance: the run they succeeded in."""
    waiting_for_lock: LockStatus | None = None
    """Set while the job waits for its ``concurrency:`` lock."""


class RunProgress(BaseModel):
    """Live progress of a run: the ``progress`` query and the workflow's result."""

    name: str
    status: RunStatus = "running"
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    jobs: list[JobProgress] = Field(default_factory=list)
    compensations: list[StepProgress] = Field(default_factory=list)
    """Saga compensations run after a failure or cancellation, in the order they ran (each is
    also listed after the steps of the job instance whose step it undoes)."""
    waiting_for_lock: LockStatus | None = None
    """Set while the run waits for its workflow-level ``concurrency:`` lock (no job has started)."""
    locks: list[LockStatus] = Field(default_factory=list)
    """The ``concurrency:`` locks the run holds now (workflow-level and its jobs')."""
