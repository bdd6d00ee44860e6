"""``--limit``: a launch-time restriction of ``each-server`` to some servers (Ansible's ``--limit``).

A limit is a comma-separated list of patterns; a server is kept when any pattern matches it:

- ``web-1``: the server of that name;
- ``web-*``, ``web-[2-3]``, ``db-?``: a shell-style glob over server names (case-sensitive);
- ``group:db``, ``group:web-*``: every server of the groups the (glob) pattern names.

The run keeps the limit (``RunInput.limit``), so reruns and the plan snapshot honour it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from .errors import ErrorItem, WorkflowValidationError

__all__ = ["GROUP_PREFIX", "MAX_PATTERNS", "LimitError", "matches", "parse_limit"]

GROUP_PREFIX = "group:"
MAX_PATTERNS = 100
"""Patterns one limit may have."""
MAX_PATTERN_CHARS = 200
_PATTERN = re.compile(r"[^\s/,]+")


class LimitError(WorkflowValidationError):
    """The ``limit`` is not a list of server names, globs and ``group:`` patterns."""


def parse_limit(value: str | Iterable[str] | None) -> list[str] | None:
    """The patterns of a limit given as ``'a,b'`` or ``['a', 'b']`` (None: no limit).

    Raises :class:`LimitError` naming the field ``limit`` and each bad pattern.
    """
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list | tuple) and all(isinstance(p, str) for p in value):
        parts = [piece for p in value for piece in p.split(",")]
    else:
        raise _error("expected a comma-separated text or a list of texts")
    patterns = [p.strip() for p in parts]
    problems: list[str] = []
    if len(patterns) > MAX_PATTERNS:
        problems.append(f"{len(patterns)} patterns (at most {MAX_PATTERNS})")
    for p in patterns:
        body = p[len(GROUP_PREFIX) :] if p.startswith(GROUP_PREFIX) else p
        if len(p) > MAX_PATTERN_CHARS:
            problems.append(f"pattern {p[:40]!r}… is longer than {MAX_PATTERN_CHARS} characters")
        elif not _PATTERN.fullmatch(body):
            problems.append(
                f"pattern {p!r}: a server name, glob or group:NAME, without whitespace or '/'"
                if p
                else "an empty pattern (two commas in a row, or a trailing comma?)"
            )
    if problems:
        raise _error(*problems)
    return list(dict.fromkeys(patterns))


def matches(patterns: Iterable[str], name: str, groups_of: Mapping[str, Iterable[str]]) -> bool:
    """Whether server ``name`` is kept: a name/glob pattern matches it, or a ``group:`` one
    matches a group (key of ``groups_of``: group → its servers) that lists it."""
    for p in patterns:
        if p.startswith(GROUP_PREFIX):
            glob = p[len(GROUP_PREFIX) :]
            if any(fnmatchcase(group, glob) and name in members for group, members in groups_of.items()):
                return True
        elif fnmatchcase(name, p):
            return True
    return False


def _error(*messages: str) -> LimitError:
    return LimitError([ErrorItem(line=1, column=1, path="limit", message=m) for m in messages], source="limit")
