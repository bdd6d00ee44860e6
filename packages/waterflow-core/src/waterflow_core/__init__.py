"""Waterflow core: DSL, expressions, node interface, plugin hooks and the Temporal interpreter workflow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .hookspecs import hookimpl
from .lazy import lazy_exports

if TYPE_CHECKING:
    from .node import Node, NodeContext

__all__ = ["Node", "NodeContext", "hookimpl"]

# Node and NodeContext pull in pydantic; load them on first access so that importing a light
# submodule (or `hookimpl` in a plugin's __init__) does not pay for it.
_LAZY = {"Node": ".node", "NodeContext": ".node"}


__getattr__ = lazy_exports(globals(), _LAZY)
