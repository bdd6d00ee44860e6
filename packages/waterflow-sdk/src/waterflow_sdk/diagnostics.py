"""Problems as a compiler shows them: ``file:line:col: message``, the source line, a caret.

Problems of the inputs (line 0: they are in no line of the file) name the ``-i`` option that
gave the value instead, or say how to give a missing one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from waterflow_core.errors import ErrorItem

INPUT_PREFIX = "inputs."
QUOTED = 160
"""Characters of a source line shown at most (a long line is cut around the column)."""


def _quoted_line(text: str, line: int, column: int) -> list[str]:
    """The source line and a caret under ``column`` (1-based), with a line-number gutter."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return []
    source, offset = _window(lines[line - 1], max(column - 1, 0))
    gutter = f"{line:>5} | "
    # The caret keeps the line's tabs so it stands under the same column in any terminal.
    lead = "".join(char if char == "\t" else " " for char in source[:offset])
    return [gutter + source, " " * (len(gutter) - 2) + "| " + lead + "^"]


def _window(source: str, offset: int) -> tuple[str, int]:
    """At most :data:`QUOTED` characters of a long line around ``offset``, and where it is in them."""
    if len(source) <= QUOTED:
        return source, offset
    start = min(max(offset - QUOTED // 3, 0), len(source) - QUOTED)
    shown = source[start : start + QUOTED]
    prefix = "..." if start else ""
    suffix = "..." if start + QUOTED < len(source) else ""
    return prefix + shown + suffix, offset - start + len(prefix)


def input_problem(item: ErrorItem, given: Mapping[str, str]) -> str | None:
    """``-i count=abc: input 'count': expected a number, got 'abc'``; ``None`` if not about an input."""
    if item.line or not item.path.startswith(INPUT_PREFIX):
        return None
    name = item.path[len(INPUT_PREFIX) :]
    if name in given:
        return f"-i {name}={given[name]}: input '{name}': {item.message}"
    if item.message == "required input is missing":
        return f"input '{name}' is required: give it with -i {name}=VALUE"
    return f"input '{name}': {item.message}"


def problem_lines(
    item: ErrorItem, *, source: str | None = None, text: str | None = None, given: Mapping[str, str] | None = None
) -> list[str]:
    """One problem: its place and message, then (when the text is known) the line and a caret."""
    about_input = input_problem(item, given or {})
    if about_input is not None:
        return [about_input]
    message = f"{item.path}: {item.message}" if item.path else item.message
    if not item.line:  # not in the text (a request's data): no place to show
        return [message]
    prefix = f"{source}:" if source else ""
    return [
        f"{prefix}{item.line}:{item.column}: {message}",
        *(_quoted_line(text, item.line, item.column) if text else []),
    ]


def all_inputs(items: Sequence[ErrorItem]) -> bool:
    """Whether every problem is one of the inputs (the command line was wrong, not the file)."""
    return bool(items) and all(not item.line and item.path.startswith(INPUT_PREFIX) for item in items)
