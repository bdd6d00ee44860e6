"""What the Waterflow API returns, as typed models.

They mirror the server's responses (``RunProgress`` and friends) but ignore fields they do not
know, so an older SDK keeps working against a newer server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from waterflow_core.errors import ErrorItem
from waterflow_core.matrix import JobMatrix

__all__ = [
    "Agent",
    "CancelResult",
    "DeclaredInput",
    "ErrorItem",
    "Job",
    "JobGraph",
    "LogEntry",
    "Node",
    "Run",
    "RunPage",
    "RunRef",
    "RunSummary",
    "Step",
    "Validation",
]

TERMINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "cancelled", "timed_out"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RunRef(_Model):
    """Where a submitted run lives; ``created`` is false when the id named an existing run."""

    id: str
    run_id: str = ""
    status_url: str = ""
    created: bool = True


class Step(_Model):
    """One step (or one fan-out instance of it)."""

    id: str
    name: str = ""
    uses: str = ""
    instance: str | None = None
    job: str = ""
    """The job id (set on compensations, which the run also lists on their own)."""
    status: str = "pending"
    attempt: int = 0
    agent: str = ""
    queue: str = ""
    """The task queue the step was scheduled on (its ``runs-on`` group, or ``agent:<name>``)."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    log_tail: list[str] = Field(default_factory=list)
    attempt_errors: list[str] = Field(default_factory=list)
    """The errors of the attempts before the last one, oldest first (a retried step)."""
    waiting: dict[str, Any] | None = None
    """Set while the step is an approval gate waiting for its signal (``flow/approval``): ``signal``,
    ``approvers``, ``message``, ``deadline``, ``inputs``, ``refused``."""
    succeeded_in: str | None = None
    """Set on a step a rerun skipped (status ``skipped``): the run it succeeded in."""
    reason: str | None = None
    """In a check run: ``check run`` (skipped: no ``check:``) or ``ran its check``."""


class Job(_Model):
    """One job (or one fan-out instance of it) and its steps."""

    id: str
    instance: str | None = None
    status: str = "pending"
    runs_on: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: list[Step] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    succeeded_in: str | None = None
    """Set when a rerun skipped every step of this instance: the run they succeeded in."""
    waiting_for_lock: dict[str, Any] | None = None
    """Set while the job waits for its ``concurrency:`` lock: ``key``, ``policy``, ``holder``, ``since``."""


class RunSnapshot(_Model):
    """What a run was started with (``Client.snapshot``): it never changes under the run."""

    id: str
    name: str = ""
    source: str = ""
    """The workflow text as submitted."""
    workflow: dict[str, Any] = Field(default_factory=dict)
    """The validated workflow the run interprets (kebab-case keys)."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    """The inputs, typed against the workflow's ``inputs:``."""
    limit: list[str] | None = None
    """The run's ``--limit`` patterns (None: every server of each each-server job)."""


class JobGraph(_Model):
    """One job of a run's workflow as written: the jobs it needs and its source lines (``Run.graph``)."""

    id: str
    name: str = ""
    needs: list[str] = Field(default_factory=list)
    fan_out: bool = False
    """It has a ``strategy`` (matrix or each-server): its instances are in ``Run.jobs``."""
    line: int | None = None
    """1-based line of the job in the run's source (None without a source)."""
    step_lines: dict[str, int] = Field(default_factory=dict)
    """1-based line of each of its steps, by step id."""


class Run(_Model):
    """A run with its job/step tree."""

    id: str
    run_id: str = ""
    name: str = ""
    status: str
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    jobs: list[Job] = Field(default_factory=list)
    compensations: list[Step] = Field(default_factory=list)
    """Saga compensations, in the order they ran (each is also one of its job's steps)."""
    matrix: list[JobMatrix] = Field(default_factory=list)
    """Per fan-out job: one row per server (instance), one cell per step."""
    temporal_status: str = ""
    rerun_of: str | None = None
    """The run this one reruns (``Client.rerun``)."""
    check: bool = False
    """A check run (``submit(..., check=True)``): steps ran their ``check:`` or were skipped."""
    reruns: list[str] = Field(default_factory=list)
    """The reruns of this run, oldest first."""
    waiting_for_lock: dict[str, Any] | None = None
    """Set while the run waits for its ``concurrency:`` lock: ``key``, ``policy``, ``holder``, ``since``."""
    locks: list[dict[str, Any]] = Field(default_factory=list)
    """The ``concurrency:`` locks the run holds now (``key``, ``scope``, ``since``)."""
    graph: list[JobGraph] = Field(default_factory=list)
    """Every job of the workflow in written order, with its needs and source lines (the DAG)."""

    @property
    def done(self) -> bool:
        """Whether the run has finished (whatever the outcome)."""
        return self.status in TERMINAL_RUN_STATUSES

    @property
    def succeeded(self) -> bool:
        """Whether the run finished successfully."""
        return self.status == "succeeded"

    def steps(self) -> list[tuple[Job, Step]]:
        """Every step with its job, in tree order."""
        return [(job, step) for job in self.jobs for step in job.steps]


class RunSummary(_Model):
    """One run of a listing."""

    id: str
    run_id: str = ""
    name: str = ""
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    check: bool = False
    """A check run."""


class RunPage(_Model):
    """One page of a listing; pass ``next_page_token`` back for the next one."""

    runs: list[RunSummary] = Field(default_factory=list)
    next_page_token: str | None = None


class CancelResult(_Model):
    """Cancellation was requested."""

    id: str
    run_id: str = ""
    status_url: str = ""
    message: str = ""


class LogEntry(_Model):
    """A log line (``kind="log"``) or a step event (``kind="step"``)."""

    kind: str = "log"
    step: str = ""
    status: str | None = None
    line: str = ""

    def __str__(self) -> str:
        return f"[{self.step}] {self.line}" if self.step else self.line


class Node(_Model):
    """A node type some process can run."""

    type: str
    version: str
    description: str = ""
    workflow_side: bool = False
    inputs_schema: dict[str, Any] | None = None
    outputs_schema: dict[str, Any] | None = None
    agents: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)


class DeclaredInput(_Model):
    """One of a workflow's declared ``inputs:`` (``Validation.inputs``)."""

    name: str
    type: str
    description: str = ""
    required: bool = False
    default: Any = None
    options: list[str] | None = None
    """The allowed values of a string input (a choice); None: any text."""


class Validation(_Model):
    """What the server says about a workflow: valid or not, the problems, the unchecked nodes.

    ``unchecked`` lists the ``uses:`` the server does not have installed: only the agent that
    runs such a step checks its ``with:``.
    """

    valid: bool
    name: str = ""
    jobs: list[str] = Field(default_factory=list)
    unchecked: list[str] = Field(default_factory=list)
    errors: list[ErrorItem] = Field(default_factory=list)
    inputs: list[DeclaredInput] = Field(default_factory=list)
    """The workflow's declared inputs, in the order they are written."""


class Agent(_Model):
    """A registered agent."""

    name: str
    groups: list[str] = Field(default_factory=list)
    alive: bool = True
    last_seen: datetime | None = None
    started_at: datetime | None = None
    nodes: list[str] = Field(default_factory=list)
    facts: dict[str, Any] = Field(default_factory=dict)
