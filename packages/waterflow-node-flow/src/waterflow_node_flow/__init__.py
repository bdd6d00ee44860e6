"""Waterflow workflow-side control-flow nodes flow/condition, flow/loop, flow/sleep, flow/approval.

Installed next to the server, this distribution makes the flow nodes known: submit accepts
``uses: flow/...`` and ``GET /v1/nodes`` publishes their schemas. The interpreter workflow in
waterflow-core runs them (ADR 0021); agents never do.
"""

from __future__ import annotations

from waterflow_core import hookimpl
from waterflow_core.node import Node

from .nodes import ApprovalNode, ConditionNode, LoopNode, SleepNode

__all__ = ["ApprovalNode", "ConditionNode", "LoopNode", "SleepNode", "waterflow_register_nodes"]


@hookimpl
def waterflow_register_nodes() -> list[type[Node]]:
    """The nodes of this package."""
    return [ConditionNode, LoopNode, SleepNode, ApprovalNode]
