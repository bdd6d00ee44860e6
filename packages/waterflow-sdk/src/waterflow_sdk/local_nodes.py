"""The node catalog of this environment, for ``waterflow validate`` and ``waterflow nodes --local``.

Nodes are loaded as the server loads them (``NodeRegistry.from_plugins(PluginManager(strict=False))``),
so a broken plugin is reported, not fatal. A ``uses:`` that is not installed here may still be
installed on the agents (docs/adr/0018-node-catalog-validation.md): a near miss of an installed
type is a typo and an error; anything else is left unchecked and said so.
"""

from __future__ import annotations

import re
from typing import Any

from waterflow_core.dsl import WithProblem
from waterflow_core.dsl.pydantic_errors import closest
from waterflow_core.plugins import PluginManager
from waterflow_core.registry import NodeRegistry, unknown_node_message

from .models import Node

TYPO_CUTOFF = 0.85
"""How close (difflib ratio) a missing type must be to an installed one to count as its typo."""

_USES_RE = re.compile(r"(?P<type>[^@\s]+)(?:@(?P<major>\d+))?")


class LocalNodes:
    """The nodes installed here: their catalog, and a ``load_workflow`` node checker over them."""

    def __init__(self) -> None:
        self.plugins = PluginManager(strict=False)
        self.registry = NodeRegistry.from_plugins(self.plugins)
        self._types = {entry["type"] for entry in self.registry.catalog()}
        self.unchecked: set[str] = set()
        """``uses`` seen by the checker that are not installed here (and are no typo)."""

    @property
    def errors(self) -> list[str]:
        """Plugins that failed to load (their nodes are missing from the catalog)."""
        return list(self.plugins.errors)

    def catalog(self) -> list[Node]:
        """The installed nodes as ``GET /v1/nodes`` entries (no agents, no groups)."""
        return [Node.model_validate(entry) for entry in self.registry.catalog()]

    def __call__(self, uses: str, with_data: dict[str, Any]) -> list[WithProblem]:
        """Problems of one step's ``uses`` and ``with:`` (the ``NodeChecker`` protocol)."""
        if uses in self.registry:
            return self.registry.check_with(uses, with_data)
        match = _USES_RE.fullmatch(uses.strip())
        node_type = match["type"] if match else uses
        if node_type not in self._types and closest(node_type, self._types, cutoff=TYPO_CUTOFF):
            message = unknown_node_message(node_type, self._types, "installed here")
            hint = "; if only the agents have it, validate with --server URL"
            return [WithProblem((), message + hint, on="uses")]
        self.unchecked.add(uses)
        return []
