"""Pydantic models of the workflow DSL (the shape fixed in DESIGN.md; names in ADR 0004).

YAML keys are kebab-case (``runs-on``, ``max-attempts``); the Python attributes are snake_case.
Every scalar arrives as text from the strict YAML loader, and these models give it its type.

The ``with:`` of the flow nodes (``flow/sleep``, ``flow/condition``, ``flow/loop``,
``flow/approval``) is part of
the DSL: those nodes run inside the interpreter and hold nested steps, so a step validates its
``with:`` against :data:`FLOW_WITH` when ``uses`` names one of them (ADR 0021).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from ..errors import ExpressionError
from ..expressions import OPEN, parse_template
from ._messages import name, quote
from .durations import parse_duration


def _kebab(name: str) -> str:
    return name.rstrip("_").replace("_", "-")


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        # Only the YAML spelling is accepted: `runs_on` is a typo of `runs-on`, not a synonym.
        populate_by_name=False,
        alias_generator=_kebab,
        frozen=True,
    )


_DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?(ms|s|m|h|d))+\s*$"},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*$"},
        {"type": "number", "exclusiveMinimum": 0},
    ],
    "description": "A duration: 500ms, 30s, 5m, 1h30m, 2d, or a number of seconds.",
}

Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]
"""A duration in seconds, written as ``500ms``/``30s``/``5m``/``1h30m``/``2d`` or plain seconds."""

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")]
"""A job, step, input or output id: a letter or ``_``, then letters, digits, ``_`` or ``-``."""

NodeRef = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*/[a-z0-9][a-z0-9_.-]*(@[0-9]+)?$")
]
"""A node type as used in ``uses:``: ``group/name`` optionally pinned to a major, ``@1``."""


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Retry(_Model):
    """Retry policy of a step; becomes the activity's Temporal ``RetryPolicy``."""

    max_attempts: Annotated[int, Field(ge=1, le=1000)] = 1
    initial_interval: Duration = 1.0
    backoff: Annotated[float, Field(ge=1.0, le=100.0)] = 2.0
    max_interval: Duration | None = None
    non_retryable: Annotated[list[str], BeforeValidator(_as_list)] = Field(default_factory=list)


class Defaults(_Model):
    """Defaults for every step of the workflow (a step's own keys win)."""

    timeout: Duration | None = None
    heartbeat_timeout: Duration | None = None
    retry: Retry | None = None


InputType = Literal["string", "number", "boolean", "object", "array"]


class InputSpec(_Model):
    """A typed workflow input, checked when a run is submitted."""

    type: InputType = "string"
    description: str = ""
    required: bool = False
    default: Any = None
    options: list[str] | None = None

    @model_validator(mode="after")
    def _typed_default(self) -> InputSpec:
        from .inputs import coerce_value

        if self.default is not None:
            # Frozen model: the typed default replaces the YAML text once, at load time.
            object.__setattr__(self, "default", coerce_value(self, self.default))
        return self


# -- flow nodes ----------------------------------------------------------------------------------

FLOW_SLEEP = "flow/sleep"
FLOW_CONDITION = "flow/condition"
FLOW_LOOP = "flow/loop"
FLOW_APPROVAL = "flow/approval"
FLOW_MAJOR = 1
"""The one major version of the flow nodes (``uses: flow/loop@1``)."""
MAX_LOOP_ITEMS = 10_000
"""Items of one ``flow/loop``; over 1000 run in child workflows, a chunk each (ADR 0030)."""
MAX_LOOP_PARALLEL = 1000
"""``max-parallel`` of a loop: iterations started in one workflow task at most."""


def flow_node(uses: object) -> str | None:
    """The flow node ``uses`` names (``flow/loop@1`` → ``flow/loop``); None for any other node."""
    if not isinstance(uses, str) or not uses.startswith("flow/"):
        return None
    node = uses.partition("@")[0]
    return node if node in FLOW_WITH else None


def _check_flow_uses(uses: str) -> str:
    """The ``flow/`` group belongs to the interpreter: only its nodes and major exist there."""
    if not uses.startswith("flow/"):
        return uses
    node, _, major = uses.partition("@")
    if node not in FLOW_WITH:
        raise ValueError(f"unknown flow node '{name(node)}' (flow nodes: {', '.join(sorted(FLOW_WITH))})")
    if major and int(major) != FLOW_MAJOR:
        raise ValueError(f"{node} has no major version {major} (installed: @{FLOW_MAJOR})")
    return uses


def _template_or(parse: Any) -> Any:
    """A validator that keeps ``$<< >>`` text (rendered when the step runs) and parses the rest."""

    def validate(value: Any) -> Any:
        if isinstance(value, str) and OPEN in value:
            return value
        return parse(value)

    return validate


def _timestamp(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a timestamp such as 2030-01-31T08:00:00Z, got {quote(value)}")
    parse_timestamp(value)
    return value


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp with its UTC offset (``Z`` or ``+02:00``); ``ValueError`` otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"expected a timestamp such as 2030-01-31T08:00:00Z, got {quote(text)}") from None
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {quote(text)} has no UTC offset: add Z or e.g. +02:00")
    return moment


_EXPRESSION_SCHEMA = {"type": "string", "pattern": r"\$<<", "description": "A $<< >> expression."}

DurationOrExpression = Annotated[
    float | str,
    BeforeValidator(_template_or(parse_duration)),
    WithJsonSchema(
        {"anyOf": [*_DURATION_SCHEMA["anyOf"], _EXPRESSION_SCHEMA], "description": _DURATION_SCHEMA["description"]}
    ),
]
"""A duration, or a ``$<< >>`` text that renders to one when the step runs."""

TimestampOrExpression = Annotated[str, BeforeValidator(_template_or(_timestamp))]
"""An ISO 8601 timestamp with offset, or a ``$<< >>`` text that renders to one."""


def _items(value: list[Any] | str) -> list[Any] | str:
    if isinstance(value, str) and OPEN not in value:
        raise ValueError("items must be a list, or a $<< >> expression that gives one")
    if isinstance(value, list) and len(value) > MAX_LOOP_ITEMS:
        raise ValueError(f"a loop runs at most {MAX_LOOP_ITEMS} items, got {len(value)}")
    return value


class FlowSleepWith(_Model):
    """``with:`` of ``flow/sleep``: a durable timer, for ``duration`` or ``until`` a moment."""

    duration: DurationOrExpression | None = None
    until: TimestampOrExpression | None = None

    @model_validator(mode="after")
    def _one_of(self) -> FlowSleepWith:
        if (self.duration is None) == (self.until is None):
            raise ValueError("set exactly one of 'duration' and 'until'")
        return self


class FlowConditionWith(_Model):
    """``with:`` of ``flow/condition``: run ``then`` when ``if`` is true, else ``else``."""

    if_: str
    then: Annotated[list[Step], Field(min_length=1)]
    else_: list[Step] = Field(default_factory=list)


class FlowLoopWith(_Model):
    """``with:`` of ``flow/loop``: run ``steps`` once per item of ``items``, in order."""

    items: Annotated[list[Any] | str, AfterValidator(_items)]
    steps: Annotated[list[Step], Field(min_length=1)]
    max_parallel: Annotated[int, Field(ge=1, le=MAX_LOOP_PARALLEL)] = 1
    break_if: str | None = None


SIGNAL_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"
"""A signal name: it is a segment of ``POST /v1/workflows/{id}/signals/{name}``."""
APPROVER_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"
"""An approver: the name of an API token (the characters a token file allows in names)."""
MAX_APPROVAL_INPUTS = 50


def _signal_name(value: Any) -> Any:
    if isinstance(value, str) and OPEN not in value and not re.match(SIGNAL_NAME_PATTERN, value):
        raise ValueError(
            f"signal name {quote(value)} may only use letters, digits and _ . - (at most 100, not starting with . or -)"
        )
    return value


def _approvers(value: list[str]) -> list[str]:
    for approver in value:
        if not re.match(APPROVER_PATTERN, approver):
            raise ValueError(f"approver {quote(approver)} is not an API token name (letters, digits and . _ -)")
    return value


class FlowApprovalWith(_Model):
    """``with:`` of ``flow/approval``: wait for a named signal (approve or reject) from an operator."""

    signal: Annotated[str, AfterValidator(_signal_name)] | None = None
    """Default: the step's id."""
    timeout: DurationOrExpression | None = None
    """Unset: wait until the run (or the step's own ``timeout``) ends it."""
    approvers: Annotated[list[str], BeforeValidator(_as_list), AfterValidator(_approvers)] = Field(
        default_factory=list
    )
    """API token names that may answer; empty: any operator token (or anyone, when the API has no tokens)."""
    inputs: Annotated[dict[Identifier, InputSpec], Field(max_length=MAX_APPROVAL_INPUTS)] = Field(
        default_factory=dict
    )
    """Typed fields of the answer's ``data``, checked as workflow inputs are."""
    message: str | None = None
    """Shown to approvers; may use ``$<< >>`` expressions."""


FlowWith = FlowSleepWith | FlowConditionWith | FlowLoopWith | FlowApprovalWith

FLOW_WITH: dict[str, type[FlowSleepWith | FlowConditionWith | FlowLoopWith | FlowApprovalWith]] = {
    FLOW_SLEEP: FlowSleepWith,
    FLOW_CONDITION: FlowConditionWith,
    FLOW_LOOP: FlowLoopWith,
    FLOW_APPROVAL: FlowApprovalWith,
}
"""The ``with:`` model of each flow node."""

_FLOW_NEEDS = {FLOW_SLEEP: "duration or until", FLOW_CONDITION: "if and then", FLOW_LOOP: "items and steps"}
_FLOW_WITH_OPTIONAL = frozenset({FLOW_APPROVAL})
"""Flow nodes whose every ``with:`` key has a default: ``with:`` may be left out."""


# -- steps ---------------------------------------------------------------------------------------


class Compensate(_Model):
    """The undo action of a step (saga): runs in reverse order if the run fails later."""

    name: str | None = None
    uses: NodeRef
    with_: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    timeout: Duration | None = None
    retry: Retry | None = None

    @field_validator("uses")
    @classmethod
    def _not_flow(cls, uses: str) -> str:
        if uses.startswith("flow/"):
            raise ValueError("a compensation runs on an agent: a flow node cannot compensate")
        return uses


class Check(_Model):
    """What a check run (``--check``) runs instead of the step: a node call that looks without
    changing anything (ADR 0041). Steps without one are skipped in a check run."""

    name: str | None = None
    uses: NodeRef
    with_: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    timeout: Duration | None = None
    retry: Retry | None = None

    @field_validator("uses")
    @classmethod
    def _not_flow(cls, uses: str) -> str:
        if uses.startswith("flow/"):
            raise ValueError("a check runs on an agent: a flow node cannot be a check")
        return uses


RunAsUser = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")]
"""A user name for ``run-as:`` (POSIX portable: lower-case letters, digits, ``_ . -``, at most 32);
a literal, no expression: the agent checks it against the users it allows."""


class Step(_Model):
    """One step of a job: a node invocation, executed as one Temporal activity (flow nodes run in the workflow)."""

    id: Identifier | None = None
    name: str | None = None
    uses: Annotated[NodeRef, AfterValidator(_check_flow_uses)]
    with_: dict[str, Any] = Field(default_factory=dict)
    if_: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    timeout: Duration | None = None
    heartbeat_timeout: Duration | None = None
    retry: Retry | None = None
    continue_on_error: bool = False
    compensate: Compensate | None = None
    check: Check | None = None
    """Run instead of the step in a check run (``--check``); never in a normal run (ADR 0041)."""
    run_as: RunAsUser | None = None
    """The user the step's processes run as; the agent must allow it (``--allow-run-as``, ADR 0038)."""
    # A flow node's `with:` read a second time, typed (nested steps included); None for other
    # nodes. Errors inside it are placed under `with`, and `with_` keeps the text as written
    # (the run's snapshot dumps that).
    flow: SkipJsonSchema[FlowWith | None] = Field(
        default=None, alias="with", exclude=True, validate_default=True, repr=False
    )

    @field_validator("flow", mode="plain")
    @classmethod
    def _flow_with(cls, value: Any, info: ValidationInfo) -> FlowWith | None:
        node = flow_node(info.data.get("uses"))
        if node is None or (value is None and node not in _FLOW_WITH_OPTIONAL):
            return None
        return FLOW_WITH[node].model_validate({} if value is None else value)

    @field_validator("heartbeat_timeout", "retry", "compensate", "check", "run_as")
    @classmethod
    def _activity_only(cls, value: Any, info: ValidationInfo) -> Any:
        node = flow_node(info.data.get("uses"))
        if value is not None and node is not None and info.field_name is not None:
            raise ValueError(
                f"'{_kebab(info.field_name)}' does not apply to {node}: it runs in the workflow, not on an agent; "
                "set it on the steps it runs"
            )
        return value

    @model_validator(mode="after")
    def _flow_needs_with(self) -> Step:
        node = flow_node(self.uses)
        if node is not None and self.flow is None:
            raise ValueError(f"{node} needs with: ({_FLOW_NEEDS[node]})")
        return self


def _batch_size(value: Any) -> int | str:
    """A ``batch`` entry: a positive count of instances (``2``) or a share of them (``25%``)."""
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else None
    if text is None:
        raise ValueError(f"a batch size is a positive integer or a percentage like 25%, got {quote(value)}")
    if text.endswith("%"):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text)
        if match is None or not 0 < float(match.group(1)) <= 100:
            raise ValueError(f"a batch percentage is more than 0% and at most 100%, got {quote(value)}")
        return f"{match.group(1)}%"
    if not re.fullmatch(r"\d+", text) or int(text) < 1:
        raise ValueError(f"a batch size is a positive integer or a percentage like 25%, got {quote(value)}")
    return int(text)


BatchSize = Annotated[int | str, BeforeValidator(_batch_size)]
"""One entry of ``strategy.batch``: a count of instances, or ``N%`` of the job's instances."""


class Strategy(_Model):
    """Fan-out of a job: over a matrix and/or over every live agent of the group."""

    matrix: dict[str, Any] | None = None
    each_server: bool = False
    max_parallel: Annotated[int, Field(ge=1, le=10000)] | None = None
    fail_fast: bool | None = None
    """Unset: ``true`` for a matrix, ``false`` with ``each-server`` (every server is finished and
    the failed ones reported; ADR 0028). Read :attr:`cancels_siblings`."""
    wait_for_agents: Duration | None = None
    """``each-server``: how long to wait for the group's first live agent (default 30 s)."""
    batch: Annotated[list[BatchSize], Field(min_length=1, max_length=100)] | None = None
    """Rolling batches (Ansible's ``serial``): the instances start batch after batch, the last
    size repeating; a batch starts when the previous one ended within the failure budget."""
    max_fail_percentage: Annotated[float, Field(ge=0, le=100)] | None = None
    """The failure budget of ``batch``: no further batch starts once more than this percentage
    of the instances started so far failed (ADR 0036)."""

    @property
    def cancels_siblings(self) -> bool:
        """Whether one failed instance cancels the others (``fail-fast`` with its default)."""
        return self.fail_fast if self.fail_fast is not None else not self.each_server

    @model_validator(mode="after")
    def _check_wait_for_agents(self) -> Strategy:
        if self.wait_for_agents is not None and not self.each_server:
            raise ValueError("wait-for-agents applies to each-server only (set each-server: true)")
        if self.batch is not None and self.matrix is None and not self.each_server:
            raise ValueError("batch applies to a fan-out job (set each-server: true or a matrix)")
        if self.max_fail_percentage is not None and self.batch is None:
            raise ValueError("max-fail-percentage is the failure budget of batch (set batch too)")
        return self

    @field_validator("matrix")
    @classmethod
    def _check_matrix(cls, matrix: dict[str, Any] | None) -> dict[str, Any] | None:
        if matrix is None:
            return None
        for key, value in matrix.items():
            shown = name(key)
            if key in ("include", "exclude"):
                if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                    raise ValueError(f"matrix.{shown} must be a list of mappings")
            elif not isinstance(value, list | str):
                raise ValueError(f"matrix.{shown} must be a list of values")
            elif isinstance(value, list) and not value:
                raise ValueError(f"matrix.{shown} must not be empty")
        return matrix


def _concurrency_key(value: str, allowed: frozenset[str]) -> str:
    try:
        template = parse_template(value)
    except ExpressionError as exc:
        raise ValueError(exc.message) from None
    for _, compiled in template.expressions:
        for ref in compiled.references:
            if ref.context not in allowed:
                raise ValueError(
                    f"context '{name(ref.context)}' is not available in concurrency.key "
                    f"(available: {', '.join(sorted(allowed))})"
                )
    return value


def _shorthand(value: Any) -> Any:
    return {"key": value} if isinstance(value, str) else value


ConcurrencyKey = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class Concurrency(_Model):
    """``concurrency:`` of a workflow: runs with the same rendered ``key`` never overlap (ADR 0040)."""

    key: ConcurrencyKey
    policy: Literal["queue", "cancel-running", "refuse"] = "queue"

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        return _concurrency_key(key, frozenset({"inputs", "vars", "workflow"}))


class JobConcurrency(Concurrency):
    """``concurrency:`` of a job: its key may also read ``needs``."""

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        return _concurrency_key(key, frozenset({"inputs", "vars", "workflow", "needs"}))


class Job(_Model):
    """A job: steps run in order on the server group named by ``runs-on``."""

    name: str | None = None
    runs_on: str
    needs: Annotated[list[Identifier], BeforeValidator(_as_list)] = Field(default_factory=list)
    if_: str | None = None
    strategy: Strategy | None = None
    timeout: Duration | None = None
    continue_on_error: bool = False
    env: dict[str, str] = Field(default_factory=dict)
    outputs: dict[Identifier, str] = Field(default_factory=dict)
    steps: Annotated[list[Step], Field(min_length=1)]
    concurrency: Annotated[JobConcurrency | None, BeforeValidator(_shorthand)] = None


class Workflow(_Model):
    """A whole workflow document."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: str = ""
    inputs: dict[Identifier, InputSpec] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    timeout: Duration | None = None
    concurrency: Annotated[Concurrency | None, BeforeValidator(_shorthand)] = None
    jobs: Annotated[dict[Identifier, Job], Field(min_length=1)]


for _model in (FlowConditionWith, FlowLoopWith, Step, Job, Workflow):
    _model.model_rebuild()

Path = tuple[str | int, ...]


def nested_step_lists(step: Step) -> list[tuple[Path, list[Step]]]:
    """The step lists a flow step runs, with their paths inside the step (empty for other steps)."""
    flow = step.flow
    if isinstance(flow, FlowLoopWith):
        return [(("with", "steps"), flow.steps)]
    if isinstance(flow, FlowConditionWith):
        return [(("with", "then"), flow.then), (("with", "else"), flow.else_)]
    return []


def step_targets(workflow: Workflow) -> Iterator[tuple[Path, Step | Compensate | Check]]:
    """Every step (nested steps of flow nodes included) and every compensation, with its
    document path (``("jobs", "j", "steps", 0, "with", "steps", 1)``), in document order."""
    for job_id, job in workflow.jobs.items():
        yield from _targets(("jobs", job_id, "steps"), job.steps)


def _targets(base: Path, steps: list[Step]) -> Iterator[tuple[Path, Step | Compensate | Check]]:
    # Recursive: nesting is bounded by the YAML loader's 64 levels.
    for index, step in enumerate(steps):
        path = (*base, index)
        yield path, step
        if step.compensate is not None:
            yield (*path, "compensate"), step.compensate
        if step.check is not None:
            yield (*path, "check"), step.check
        for sub, nested in nested_step_lists(step):
            yield from _targets((*path, *sub), nested)
