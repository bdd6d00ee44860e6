"""What one evaluation carries: the contexts, the step status and the memory budget.

The budget is GitHub's (``ExpressionConstants.MaxMemory``, 1 MiB) counted GitHub's way: a string
costs 26 bytes plus 2 per character, an array made by ``*`` 24 bytes plus 8 per element. Every
string a function builds and every filtered array is charged before it is built, so no
expression can make Waterflow build a large value (``format('{0}{0}{0}...', x)`` nested, ``*``
over shared data), and total work stays proportional to the budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ExpressionError

__all__ = ["MAX_MEMORY", "STATUSES", "EvalState"]

MAX_MEMORY = 1024 * 1024
STATUSES = frozenset({"success", "failure", "cancelled"})

_STRING_OVERHEAD = 26
_OBJECT_OVERHEAD = 24
_ITEM_SIZE = 8


class EvalState:
    """The mutable part of one evaluation; compiled closures take it as their only argument."""

    __slots__ = ("budget", "contexts", "status")

    def __init__(self, contexts: Mapping[str, Any], status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, not {status!r}")
        self.contexts = contexts
        self.status = status
        self.budget = MAX_MEMORY

    def charge_text(self, length: int, position: int, what: str) -> None:
        """Account for a string of ``length`` characters about to be built."""
        self._charge(_STRING_OVERHEAD + 2 * length, position, what)

    def charge_items(self, count: int, position: int, what: str) -> None:
        """Account for ``count`` more elements of a filtered array."""
        self._charge(_ITEM_SIZE * count, position, what)

    def charge_array(self, position: int, what: str) -> None:
        """Account for a new filtered array."""
        self._charge(_OBJECT_OVERHEAD, position, what)

    def _charge(self, amount: int, position: int, what: str) -> None:
        self.budget -= amount
        if self.budget < 0:
            raise ExpressionError(
                "The maximum allowed memory size was exceeded while evaluating the following "
                f"expression: {what} (the limit is {MAX_MEMORY} bytes, 2 per character)",
                position,
                "limit",
            )
