"""How error messages quote what the user wrote: short, whatever the input.

A message quotes a value or lists names so the user recognises the place; a 100 KB value or
10 000 job names must not turn one error into a wall of text.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

MAX_QUOTED = 60
"""Characters of a value quoted in a message (including the quotes)."""
MAX_LISTED = 10
"""Names listed in a message ("available: a, b, ...")."""
MAX_MESSAGE = 400
"""Characters of a whole message; longer ones (an expression error quoting a huge expression) are cut."""


def quote(value: Any) -> str:
    """``repr(value)``, cut to :data:`MAX_QUOTED` characters."""
    if isinstance(value, str) and len(value) > MAX_QUOTED - 5:
        return repr(value[: MAX_QUOTED - 5] + "...")
    text = repr(value)
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 3] + "..."


def name(value: str) -> str:
    """A user-chosen name (job id, key) as it appears inside quotes in a message."""
    return value if len(value) <= MAX_QUOTED else value[: MAX_QUOTED - 3] + "..."


def listing(names: Iterable[str], total: int | None = None) -> str:
    """``a, b, c`` of at most :data:`MAX_LISTED` names, saying how many more there are; with
    ``total`` (how many ``names`` holds) only the names shown are read from the iterable."""
    if total is None:
        names = list(names)
        total = len(names)
    items = [name(n) for n in islice(names, MAX_LISTED)]
    if not items:
        return "none"
    more = f", ... ({total - len(items)} more)" if total > len(items) else ""
    return ", ".join(items) + more


def cut(message: str) -> str:
    """``message``, cut to :data:`MAX_MESSAGE` characters."""
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
