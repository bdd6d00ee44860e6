"""Lazy package attributes (PEP 562): a submodule is imported the first time one of its names is used.

Packages use it to stay cheap to import (``waterflow --help``, plugins' ``__init__``, the workflow
sandbox) while still offering ``from package import Name``::

    __getattr__ = lazy_exports(globals(), {"Node": ".node"})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(namespace: dict[str, Any], table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for the package whose ``globals()`` is ``namespace``.

    ``table`` maps each lazy name to the module that defines it, relative to the package (``".node"``).
    The first access imports that module and stores the value in the package, so later accesses are
    plain lookups; any other name raises :class:`AttributeError` as usual.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__
