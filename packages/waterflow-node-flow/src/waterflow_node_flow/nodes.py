"""The flow nodes as the registry knows them: type, version, ``with:`` and outputs schemas.

Their ``Inputs`` are the DSL's own models (``waterflow_core.dsl.models``): the nested steps of a
condition or loop are steps of the workflow, validated with it and run by the interpreter.
``run`` only answers an agent that was asked to run one by mistake.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.exceptions import ApplicationError

from waterflow_core.dsl.models import (
    FLOW_APPROVAL,
    FLOW_CONDITION,
    FLOW_LOOP,
    FLOW_SLEEP,
    FlowApprovalWith,
    FlowConditionWith,
    FlowLoopWith,
    FlowSleepWith,
)
from waterflow_core.errors import ErrorCode
from waterflow_core.node import Node, NodeContext


class _FlowNode(Node):
    workflow_side = True

    async def run(self, ctx: NodeContext, inputs: Any) -> BaseModel:
        raise ApplicationError(
            f"{self.type} runs inside the workflow, not on agents", type=ErrorCode.UNKNOWN_NODE, non_retryable=True
        )


class SleepNode(_FlowNode):
    """Wait for a duration or until a moment: a durable timer that survives every restart."""

    type = FLOW_SLEEP
    version = "1.0.0"
    Inputs = FlowSleepWith  # type: ignore[assignment]

    class Outputs(BaseModel):
        """``steps.<id>.outputs`` of ``flow/sleep``."""

        until: str = Field(description="The moment slept until (UTC, ISO 8601).")
        seconds: float = Field(description="How long the step slept (0 when `until` had passed).")


class ConditionNode(_FlowNode):
    """Run the steps of `then` when `if` is true, else those of `else`."""

    type = FLOW_CONDITION
    version = "1.0.0"
    Inputs = FlowConditionWith  # type: ignore[assignment]

    class Outputs(BaseModel):
        """``steps.<id>.outputs`` of ``flow/condition``."""

        branch: Literal["then", "else"] = Field(description="The branch that ran.")
        result: bool = Field(description="Whether `if` was true.")
        steps: dict[str, Any] = Field(description="The branch's steps by id, as the `steps` context holds them.")


class LoopNode(_FlowNode):
    """Run `steps` once per item of `items`, in order, at most `max-parallel` at a time."""

    type = FLOW_LOOP
    version = "1.0.0"
    Inputs = FlowLoopWith  # type: ignore[assignment]

    class Outputs(BaseModel):
        """``steps.<id>.outputs`` of ``flow/loop``."""

        results: list[dict[str, Any] | None] = Field(
            description="One entry per iteration that ran, in item order: its steps by id, as in the `steps` context."
        )
        count: int = Field(description="Iterations run.")
        broken: bool = Field(description="Whether `break-if` ended the loop early.")


class ApprovalNode(_FlowNode):
    """Wait for an operator to approve or reject, through a named signal: a durable gate."""

    type = FLOW_APPROVAL
    version = "1.0.0"
    Inputs = FlowApprovalWith  # type: ignore[assignment]

    class Outputs(BaseModel):
        """``steps.<id>.outputs`` of ``flow/approval``."""

        decision: Literal["approved", "rejected", "timed_out"] = Field(description="How the gate ended.")
        approved: bool = Field(description="Whether it was approved.")
        by: str = Field(description="The name of the API token that answered (empty when the API has no tokens).")
        at: str | None = Field(description="When the answer arrived (UTC, ISO 8601); null on timeout.")
        signal: str = Field(description="The signal the gate waited for.")
        data: dict[str, Any] = Field(description="The answer's data, typed by `inputs` (defaults filled in).")
