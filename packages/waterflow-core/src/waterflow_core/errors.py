"""Errors shared by every Waterflow package.

Every error a user can cause by what they write carries a place: a line and a column in the
workflow text (1-based) and a path of keys, so the CLI, the REST API and editors can point at it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel


class ErrorItem(BaseModel):
    """One problem found in a workflow text."""

    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ErrorCode(StrEnum):
    """Machine-readable error codes, matched instead of message text wherever an error is handled.

    The values are Temporal ``ApplicationError`` types, so a code survives every process
    boundary (agent → Temporal → interpreter → server): never rename one.
    """

    BAD_INPUT = "WaterflowBadInput"
    """A step's inputs can never be valid (bad ``with:``, malformed task): not retried."""
    UNKNOWN_NODE = "WaterflowUnknownNode"
    """``uses:`` names a node type or major version that is not installed: not retried."""
    STEP_FAILED = "WaterflowStepFailed"
    """A node failed (retried per the step's retry policy)."""
    RUN_FAILED = "WaterflowRunFailed"
    """The interpreter workflow failed: a job failed, or the run could not start."""
    RUN_TIMED_OUT = "WaterflowRunTimedOut"
    """The interpreter workflow exceeded the workflow's ``timeout``."""


class WaterflowError(Exception):
    """Base class of every error Waterflow raises on purpose; ``code`` says which kind it is.

    Subclasses set ``code`` to an :class:`ErrorCode`; the SDK's API errors set it per instance to
    the server's code (``not_found``, ``conflict``...), so the attribute is a plain string here.
    """

    code: str | None = None


class WorkflowValidationError(WaterflowError):
    """A workflow text was rejected; ``errors`` lists every problem found, in text order."""

    def __init__(self, errors: Iterable[ErrorItem], source: str | None = None) -> None:
        self.errors: list[ErrorItem] = sorted(errors, key=lambda e: (e.line, e.column, e.path))
        self.source = source
        super().__init__(self._summary())

    def _summary(self) -> str:
        prefix = f"{self.source}:" if self.source else ""
        lines = [f"{prefix}{item}" for item in self.errors[:20]]
        if len(self.errors) > 20:
            lines.append(f"... and {len(self.errors) - 20} more")
        return "\n".join(lines) if lines else "invalid workflow"


class ExpressionError(WaterflowError):
    """An expression failed to lex, parse or evaluate.

    ``kind`` is ``lexing``, ``parsing``, ``evaluation`` or ``limit``; ``position`` is the 1-based
    character offset in the expression text (0 when the error concerns the whole expression).
    """

    def __init__(self, message: str, position: int = 0, kind: str = "evaluation") -> None:
        self.message = message
        self.position = position
        self.kind = kind
        super().__init__(f"{message} (at position {position})" if position else message)


MAX_PATH_PARTS = 8
"""Deeper paths show their first and last parts around an ellipsis."""
MAX_PATH_KEY = 60
"""Characters of one key shown in a path (including the ``...`` that marks a cut)."""
_PLAIN_KEY = re.compile(r"[\w-]+")  # shown as .key; any other key as ["key"]


def format_path(parts: Sequence[str | int]) -> str:
    """Render a key path as the user would write it: ``jobs.db.steps[0].with``.

    Keys that are not plain words are quoted (``env["A B"]``, ``vars["a.b"]``), keys longer than
    :data:`MAX_PATH_KEY` are cut, and a path of more than :data:`MAX_PATH_PARTS` parts shows its
    first and last parts around ``…`` (``vars.v.k39[0]…[0].k1[0]``), so a hostile document cannot
    make one error's path longer than a few hundred characters.
    """
    shown: list[str] = []
    for part in parts:
        if isinstance(part, int):
            shown.append(f"[{part}]")
            continue
        key = str(part)
        if len(key) <= MAX_PATH_KEY and _PLAIN_KEY.fullmatch(key):
            shown.append(f".{key}" if shown else key)
        else:
            if len(key) > MAX_PATH_KEY:
                key = key[: MAX_PATH_KEY - 3] + "..."
            shown.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    if len(shown) > MAX_PATH_PARTS:
        shown = [*shown[: MAX_PATH_PARTS // 2], "…", *shown[-(MAX_PATH_PARTS // 2 - 1) :]]
    return "".join(shown)
