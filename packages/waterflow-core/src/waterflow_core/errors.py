"""Errors shared by every Waterflow package.

Every error a user can cause by what they write carries a place: a line and a column in the
workflow text (1-based) and a path of keys, so the CLI, the REST API and editors can point at it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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


class WaterflowError(Exception):
    """Base class of every error Waterflow raises on purpose."""


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


def format_path(parts: Sequence[str | int]) -> str:
    """Render a key path as the user wrote it: ``jobs.db.steps[0].with``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
