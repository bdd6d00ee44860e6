"""Waterflow node http/request."""

from __future__ import annotations

from waterflow_core import hookimpl
from waterflow_core.node import Node

from .models import RequestInputs, RequestOutputs
from .node import RequestNode
from .policy import NetworkPolicy, RefusedByPolicy

__all__ = [
    "NetworkPolicy",
    "RefusedByPolicy",
    "RequestInputs",
    "RequestNode",
    "RequestOutputs",
    "waterflow_register_nodes",
]


@hookimpl
def waterflow_register_nodes() -> list[type[Node]]:
    """The nodes of this package."""
    return [RequestNode]
