"""The contract between the interpreter workflow and the agents: one activity per step.

The activity *type* is the node type as written in ``uses`` (``exec/shell`` or ``exec/shell@1``),
so Temporal's UI shows what ran; the agent serves it through one dynamic activity. The activity id
is ``<job>/<step-id>[#instance]``, built by :func:`step_path` (the one place that spells it).

``with`` and ``env`` travel as the user's templates, unrendered: the agent renders them against
``contexts`` after resolving secrets, so secret values never enter workflow history and
``shell_inputs`` can be turned into environment variables instead of spliced text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .runs import ConditionStatus


def step_path(job: str, step: str | None = None, instance: str | None = None) -> str:
    """``job[/step][#instance]``: a step's activity id and its name in logs, errors and the CLI.

    Without ``step`` it names a job instance (``deploy#web-1``). Every place that shows or keys
    by a step path calls this, so the Temporal UI, logs and messages always agree.
    """
    base = f"{job}/{step}" if step is not None else job
    return f"{base}#{instance}" if instance else base


class StepTask(BaseModel):
    """Input of one step activity."""

    model_config = ConfigDict(populate_by_name=True)

    workflow_id: str
    job: str
    step: str
    instance: str | None = None
    name: str = ""
    node: str
    # validation/serialization aliases, not `alias`: type checkers then see the `with_` keyword.
    with_: dict[str, Any] = Field(default_factory=dict, validation_alias="with", serialization_alias="with")
    env: dict[str, str] = Field(default_factory=dict)
    contexts: dict[str, Any] = Field(default_factory=dict)
    status: ConditionStatus = "success"
    """What the status functions (``success()``, ``failure()``...) read while rendering."""
    run_as: str | None = None
    """The step's ``run-as:`` user; the agent runs the step only if it allows that user (ADR 0038)."""

    @property
    def step_path(self) -> str:
        """``job/step[#instance]``: the activity id and the step's name in logs."""
        return step_path(self.job, self.step, self.instance)


class StepResult(BaseModel):
    """Result of one step activity."""

    outputs: dict[str, Any] = Field(default_factory=dict)
    agent: str = ""
    attempt: int = 0
    """The Temporal attempt that produced this result (1 = first try)."""
    log_tail: list[str] = Field(default_factory=list)
    attempt_errors: list[str] = Field(default_factory=list)
    """The errors of the attempts before this one, oldest first (a step that succeeded after
    retries); failures carry the same list in their details (``attempt_errors``)."""
