"""Waterflow core: DSL, expressions, node interface, plugin hooks and the Temporal interpreter workflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .node import Node, NodeContext

__all__ = ["Node", "NodeContext", "hookimpl"]

# Node and NodeContext pull in pydantic; load them on first access so that importing a light
# submodule (or `hookimpl` in a plugin's __init__) does not pay for it.
_LAZY = {"Node": ".node", "NodeContext": ".node"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'waterflow_core' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
