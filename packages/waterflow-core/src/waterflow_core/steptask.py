"""The contract between the interpreter workflow and the agents: one activity per step.

The activity *type* is the node type as written in ``uses`` (``exec/shell`` or ``exec/shell@1``),
so Temporal's UI shows what ran; the agent serves it through one dynamic activity. The activity id
is ``<job>/<step-id>[#instance]``.

``with`` and ``env`` travel as the user's templates, unrendered: the agent renders them against
``contexts`` after resolving secrets, so secret values never enter workflow history and
``shell_inputs`` can be turned into environment variables instead of spliced text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# ApplicationError types the agent raises; the interpreter marks the first two non-retryable.
ERROR_BAD_INPUT = "WaterflowBadInput"
ERROR_UNKNOWN_NODE = "WaterflowUnknownNode"
ERROR_STEP_FAILED = "WaterflowStepFailed"


class StepTask(BaseModel):
    """Input of one step activity."""

    model_config = ConfigDict(populate_by_name=True)

    workflow_id: str
    job: str
    step: str
    instance: str | None = None
    name: str = ""
    node: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    env: dict[str, str] = Field(default_factory=dict)
    contexts: dict[str, Any] = Field(default_factory=dict)
    status: str = "success"

    @property
    def step_path(self) -> str:
        """``job/step[#instance]``: the activity id and the step's name in logs."""
        base = f"{self.job}/{self.step}"
        return f"{base}#{self.instance}" if self.instance else base


class StepResult(BaseModel):
    """Result of one step activity."""

    outputs: dict[str, Any] = Field(default_factory=dict)
    agent: str = ""
    attempt: int = 0
    """The Temporal attempt that produced this result (1 = first try)."""
    log_tail: list[str] = Field(default_factory=list)
