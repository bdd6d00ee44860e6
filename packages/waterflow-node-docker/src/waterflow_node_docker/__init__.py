"""Waterflow nodes docker/exec, docker/compose-up and docker/compose-down."""

from __future__ import annotations

from waterflow_core import hookimpl
from waterflow_core.node import Node

from .compose_models import ComposeDownInputs, ComposeDownOutputs, ComposeUpInputs, ComposeUpOutputs
from .compose_nodes import ComposeDownNode, ComposeUpNode
from .exec_node import ExecInputs, ExecNode, ExecOutputs

__all__ = [
    "ComposeDownInputs",
    "ComposeDownNode",
    "ComposeDownOutputs",
    "ComposeUpInputs",
    "ComposeUpNode",
    "ComposeUpOutputs",
    "ExecInputs",
    "ExecNode",
    "ExecOutputs",
    "waterflow_register_nodes",
]


@hookimpl
def waterflow_register_nodes() -> list[type[Node]]:
    """The nodes of this package."""
    return [ExecNode, ComposeUpNode, ComposeDownNode]
