"""Waterflow nodes exec/shell and exec/script."""

from __future__ import annotations

from waterflow_core import hookimpl
from waterflow_core.node import Node

from .models import ExecOutputs
from .nodes import ScriptNode, ShellNode

__all__ = ["ExecOutputs", "ScriptNode", "ShellNode", "waterflow_register_nodes"]


@hookimpl
def waterflow_register_nodes() -> list[type[Node]]:
    """The nodes of this package."""
    return [ShellNode, ScriptNode]
