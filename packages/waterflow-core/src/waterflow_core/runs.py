"""The contract of the interpreter workflow ``WaterflowRun``: its input, progress query and result.

The server starts runs with :class:`RunInput` and reads :class:`RunProgress` through the
``progress`` query (or from the result once closed); nothing about a run is stored elsewhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

WORKFLOW_TYPE = "WaterflowRun"
PROGRESS_QUERY = "progress"
SERVER_TASK_QUEUE = "waterflow-server"
"""Task queue of the interpreter workflow worker hosted by ``waterflow server``."""

RunStatus = Literal["running", "succeeded", "failed", "cancelled", "timed_out"]
StepStatus = Literal["pending", "running", "success", "failure", "skipped", "cancelled"]


class RunInput(BaseModel):
    """Everything a run needs, snapshotted at submit time so it never changes under the run."""

    workflow: dict[str, Any]
    """The validated workflow, dumped by alias (kebab-case keys) in JSON mode with
    ``exclude_unset=True``: a step's ``retry`` overrides only the keys it sets, so the keys it
    did not set must stay absent (``interpreter.client.start_run`` does this)."""
    inputs: dict[str, Any] = Field(default_factory=dict)
    source: str = ""
    """The workflow text as submitted, for display."""


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


class RunProgress(BaseModel):
    """Live progress of a run: the ``progress`` query and the workflow's result."""

    name: str
    status: RunStatus = "running"
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    jobs: list[JobProgress] = Field(default_factory=list)
    compensations: list[StepProgress] = Field(default_factory=list)
    """Saga compensations run after a failure or cancellation, in the order they ran."""
