"""Waterflow node file/transfer."""

from __future__ import annotations

from waterflow_core import hookimpl
from waterflow_core.node import Node

from .node import FileTransferNode, TransferInputs, TransferOutputs
from .roots import ROOTS_ENV

__all__ = ["ROOTS_ENV", "FileTransferNode", "TransferInputs", "TransferOutputs", "waterflow_register_nodes"]


@hookimpl
def waterflow_register_nodes() -> list[type[Node]]:
    """The nodes of this package."""
    return [FileTransferNode]
