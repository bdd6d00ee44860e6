"""Request and response bodies of the REST API (they are also its OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from waterflow_core.dsl.models import InputType, Workflow
from waterflow_core.errors import ErrorItem
from waterflow_core.matrix import JobMatrix
from waterflow_core.runs import JobProgress, LockStatus, RunStatus, StepProgress

__all__ = [
    "AgentEntry",
    "AgentList",
    "CancelAccepted",
    "DeclaredInput",
    "ErrorBody",
    "ErrorItem",
    "Health",
    "JobGraph",
    "LogEntry",
    "LogsResponse",
    "NodeEntry",
    "NodeList",
    "RunDetail",
    "RunList",
    "RunRef",
    "RunSummary",
    "SubmitRequest",
    "ValidateRequest",
    "ValidateResult",
]


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer: a message, a machine-readable code and the problems found.

    ``errors`` lists ``{line, column, path, message}`` items when the problem is in a workflow
    text (line and column are 0 when it is in the submitted inputs); it is empty otherwise.
    """

    code: str
    message: str
    errors: list[ErrorItem] = Field(default_factory=list)


class SubmitRequest(BaseModel):
    """JSON body of ``POST /v1/workflows`` (a YAML body is the workflow text alone)."""

    model_config = ConfigDict(extra="forbid")

    workflow: str = Field(description="The workflow, as YAML text.")
    inputs: dict[str, Any] = Field(default_factory=dict, description="Values of the declared inputs.")
    id: str | None = Field(
        default=None,
        description="Run id and idempotency key: submitting the same id again never starts a second run.",
    )
    limit: str | list[str] | None = Field(
        default=None,
        description="Restrict each-server jobs to these servers: comma-separated names, shell-style globs "
        "and `group:NAME` patterns (a text or a list); a job whose group none matches fails.",
    )
    check: bool = Field(
        default=False,
        description="A check run (ADR 0041): steps with `check:` run it instead of themselves, the others are "
        "skipped, nothing is compensated.",
    )


class ValidateRequest(BaseModel):
    """JSON body of ``POST /v1/validate`` (a YAML body is the workflow text alone)."""

    model_config = ConfigDict(extra="forbid")

    workflow: str
    inputs: dict[str, Any] | None = Field(
        default=None, description="When given, the inputs are checked against the declared ones too."
    )


class DeclaredInput(BaseModel):
    """One of a workflow's ``inputs:``: what a form asking for it needs (the web console's submit page)."""

    name: str
    type: InputType
    description: str = ""
    required: bool = Field(
        default=False, description="A submission must give it (a required input with a default never lacks one)."
    )
    default: Any = Field(default=None, description="The typed default; null when there is none.")
    options: list[str] | None = Field(
        default=None, description="The allowed values of a string input (a choice); null: any text."
    )

    @classmethod
    def of(cls, workflow: Workflow) -> list[DeclaredInput]:
        """The workflow's declared inputs, in the order they are written."""
        return [
            cls(
                name=name,
                type=spec.type,
                description=spec.description,
                required=spec.required,
                default=spec.default,
                options=spec.options,
            )
            for name, spec in workflow.inputs.items()
        ]


class ValidateResult(BaseModel):
    """Answer of ``POST /v1/validate`` for a valid workflow."""

    valid: bool = True
    name: str
    jobs: list[str]
    unchecked: list[str] = Field(
        default_factory=list,
        description="uses: values the server does not have installed: their with: is checked by the agent "
        "that runs the step, at run time.",
    )
    inputs: list[DeclaredInput] = Field(
        default_factory=list, description="The workflow's declared inputs, in the order they are written."
    )


class RunRef(BaseModel):
    """Answer of ``POST /v1/workflows``: where to find the run."""

    id: str
    run_id: str
    status_url: str
    created: bool = Field(description="False when the id named an existing, finished run (no new run).")


class CancelAccepted(BaseModel):
    """Answer of ``DELETE /v1/workflows/{id}``: cancellation was requested."""

    id: str
    run_id: str
    status_url: str
    message: str = "cancellation requested; the run compensates completed steps, then ends cancelled"


class RunSummary(BaseModel):
    """One run in a listing."""

    id: str
    run_id: str
    name: str
    status: RunStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    check: bool = Field(default=False, description="A check run (`--check`, ADR 0041).")


class RunList(BaseModel):
    """One page of ``GET /v1/workflows``."""

    runs: list[RunSummary]
    next_page_token: str | None = Field(
        default=None, description="Pass as page_token to get the next page; null on the last page."
    )


class RunSnapshot(BaseModel):
    """Answer of ``GET /v1/workflows/{id}/snapshot``: what the run was started with, never changed since."""

    id: str
    name: str
    source: str = Field(description="The workflow text as submitted (empty for runs started without one).")
    workflow: dict[str, Any] = Field(description="The validated workflow the run interprets (kebab-case keys).")
    inputs: dict[str, Any] = Field(description="The inputs, typed against the workflow's `inputs:`.")
    limit: list[str] | None = Field(default=None, description="The run's `--limit` patterns (None: every server).")


class JobGraph(BaseModel):
    """One job of a run's workflow as written: the jobs it needs and where it is in the source."""

    id: str
    name: str = ""
    needs: list[str] = Field(default_factory=list, description="The jobs it waits for (the DAG's edges).")
    fan_out: bool = Field(
        default=False, description="It has a `strategy` (matrix or each-server): its instances are in jobs."
    )
    line: int | None = Field(
        default=None, description="1-based line of the job's key in the run's source (null without a source)."
    )
    step_lines: dict[str, int] = Field(
        default_factory=dict, description="1-based line of each of its steps in the source, by step id."
    )


class RunDetail(BaseModel):
    """A run with its job/step tree (``GET /v1/workflows/{id}``)."""

    id: str
    run_id: str
    name: str
    status: RunStatus
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    jobs: list[JobProgress] = Field(default_factory=list)
    compensations: list[StepProgress] = Field(
        default_factory=list,
        description="Saga compensations run after a failure or cancellation, in the order they ran, each "
        "with its status, error, agent, log tail and times (each is also listed with its job's steps).",
    )
    matrix: list[JobMatrix] = Field(
        default_factory=list,
        description="Per fan-out job, its result matrix: one row per instance (server), one cell per step "
        "(ok, failed, timed-out, skipped, cancelled, running, pending).",
    )
    waiting_for_lock: LockStatus | None = Field(
        default=None,
        description="Set while the run waits for its workflow-level concurrency lock: the key, the policy, "
        "the run holding it when this one asked, and since when (ADR 0040). A job waiting for its own lock "
        "has the same field on its entry in jobs.",
    )
    locks: list[LockStatus] = Field(
        default_factory=list, description="The concurrency locks the run holds now (scope workflow or job:<id>)."
    )
    temporal_status: str = Field(description="Temporal's own execution status, for operators.")
    rerun_of: str | None = Field(default=None, description="The run this one reruns (ADR 0039).")
    check: bool = Field(
        default=False,
        description="A check run (`--check`, ADR 0041): steps ran their `check:` or were skipped.",
    )
    reruns: list[str] = Field(
        default_factory=list, description="The reruns of this run, oldest first (ADR 0039)."
    )
    graph: list[JobGraph] = Field(
        default_factory=list,
        description="Every job of the workflow in written order, with its needs and the source lines of it "
        "and its steps (empty when what the run started with cannot be read).",
    )


class LogEntry(BaseModel):
    """One line of a step's output, or one step event (``kind`` says which)."""

    kind: Literal["log", "step"] = "log"
    step: str = Field(description="job/step[#instance], as in the Temporal UI's activity ids.")
    status: str | None = Field(default=None, description="The step's status (step events).")
    line: str = ""


class LogsResponse(BaseModel):
    """``GET /v1/workflows/{id}/logs`` without ``follow``."""

    id: str
    status: RunStatus
    entries: list[LogEntry]


class NodeEntry(BaseModel):
    """One node type (one major version) that some process can run."""

    type: str
    version: str
    description: str = ""
    workflow_side: bool = False
    inputs_schema: dict[str, Any] | None = None
    outputs_schema: dict[str, Any] | None = None
    agents: list[str] = Field(default_factory=list, description="Live agents that provide it.")
    groups: list[str] = Field(
        default_factory=list, description="Groups (runs-on values) of those agents: where a step can run it."
    )


class NodeList(BaseModel):
    """``GET /v1/nodes``."""

    nodes: list[NodeEntry]


class AgentEntry(BaseModel):
    """One registered agent."""

    name: str
    groups: list[str]
    alive: bool
    last_seen: datetime | None = None
    started_at: datetime | None = None
    nodes: list[str] = Field(default_factory=list, description="type@version of each node it runs.")
    facts: dict[str, Any] = Field(default_factory=dict)


class AgentList(BaseModel):
    """``GET /v1/agents``; ``complete`` is false when the registry could not be read in full."""

    agents: list[AgentEntry]
    complete: bool = True
    message: str | None = None


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok", "degraded"]
    temporal: Literal["ok", "unreachable"]
    worker: Literal["running", "stopped", "disabled"]
    temporal_address: str
    namespace: str
    temporal_ui: str | None = None
    version: str

