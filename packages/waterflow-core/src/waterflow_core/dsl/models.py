"""Pydantic models of the workflow DSL (the shape fixed in DESIGN.md; names in ADR 0004).

YAML keys are kebab-case (``runs-on``, ``max-attempts``); the Python attributes are snake_case.
Every scalar arrives as text from the strict YAML loader, and these models give it its type.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ._messages import name
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


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?(ms|s|m|h|d))+\s*$"},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*$"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "A duration: 500ms, 30s, 5m, 1h30m, 2d, or a number of seconds.",
        }
    ),
]
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


class Compensate(_Model):
    """The undo action of a step (saga): runs in reverse order if the run fails later."""

    name: str | None = None
    uses: NodeRef
    with_: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    timeout: Duration | None = None
    retry: Retry | None = None


class Step(_Model):
    """One step of a job: a node invocation, executed as one Temporal activity."""

    id: Identifier | None = None
    name: str | None = None
    uses: NodeRef
    with_: dict[str, Any] = Field(default_factory=dict)
    if_: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    timeout: Duration | None = None
    heartbeat_timeout: Duration | None = None
    retry: Retry | None = None
    continue_on_error: bool = False
    compensate: Compensate | None = None


class Strategy(_Model):
    """Fan-out of a job: over a matrix and/or over every live agent of the group."""

    matrix: dict[str, Any] | None = None
    each_server: bool = False
    max_parallel: Annotated[int, Field(ge=1, le=10000)] | None = None
    fail_fast: bool = True

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


class Workflow(_Model):
    """A whole workflow document."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: str = ""
    inputs: dict[Identifier, InputSpec] = Field(default_factory=dict)
    vars: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    timeout: Duration | None = None
    jobs: Annotated[dict[Identifier, Job], Field(min_length=1)]
