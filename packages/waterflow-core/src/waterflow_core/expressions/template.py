"""Text with ``$<< expression >>`` segments: splitting, compiling and rendering.

A ``>>`` inside a single-quoted string literal does not close the segment
(``$<< format('>>{0}', 1) >>``). A text that is exactly one segment (surrounding whitespace
allowed) renders to the expression's value, whatever its type; any other text renders to a
string, each value converted with GitHub's string coercion.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from functools import lru_cache
from typing import Any

from ..errors import ExpressionError
from .coercion import to_string
from .compiler import KNOWN_CONTEXTS, MAX_CACHED_TEXT, CompiledExpression, _compile_text
from .state import EvalState

__all__ = ["CLOSE", "OPEN", "Template", "parse_template", "render_template"]

OPEN = "$<<"
"""Opens an expression in a text; the one spelling every module tests for."""
CLOSE = ">>"
"""Closes an expression (outside a quoted string literal)."""


class Template:
    """A parsed text; immutable and cached by :func:`parse_template`."""

    __slots__ = ("_parts", "expressions", "is_literal", "is_single_expression", "text")

    def __init__(
        self,
        text: str,
        parts: tuple[str | tuple[int, CompiledExpression], ...],
        single: bool,
    ) -> None:
        self.text = text
        self._parts = parts
        self.expressions: tuple[tuple[int, CompiledExpression], ...] = tuple(
            part for part in parts if not isinstance(part, str)
        )
        """``(offset, expression)``: offset is where the expression text starts in ``text`` (1-based)."""
        self.is_literal = not self.expressions
        """The text has no ``$<<``; it renders to itself."""
        self.is_single_expression = single
        """The text is one ``$<< >>`` and whitespace; it renders to the value, keeping its type."""

    def render(self, contexts: Mapping[str, Any], *, status: str = "success") -> Any:
        """The text with every expression replaced by its value (see the class description)."""
        if self.is_literal:
            return self.text
        state = EvalState(contexts, status)
        if self.is_single_expression:
            return self.expressions[0][1].run(state)
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            offset, compiled = part
            text = to_string(compiled.run(state))
            # Splicing values into text builds a new string; it counts against the budget as in
            # GitHub, which evaluates text with embedded expressions as a format() call.
            state.charge_text(len(text), offset, "text with $<< >>")
            out.append(text)
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


def parse_template(text: str, *, allowed_contexts: Collection[str] | None = None) -> Template:
    """Split and compile ``text``; cached by text (up to :data:`~.compiler.MAX_CACHED_TEXT` characters).

    Raises :class:`~waterflow_core.errors.ExpressionError` whose ``position`` is a 1-based offset
    into ``text`` (the message quotes the expression and positions within it, as GitHub's do).
    """
    allowed = KNOWN_CONTEXTS if allowed_contexts is None else frozenset(c.lower() for c in allowed_contexts)
    return _parse(text, allowed)


def render_template(text: str, contexts: Mapping[str, Any], *, status: str = "success") -> Any:
    """Parse (cached) and render ``text``; it may use :data:`KNOWN_CONTEXTS` and any name in ``contexts``."""
    allowed = KNOWN_CONTEXTS.union(name.lower() for name in contexts if isinstance(name, str))
    return _parse(text, allowed).render(contexts, status=status)


def _parse(text: str, allowed: frozenset[str]) -> Template:
    """Parse ``text``; from the cache when it is at most :data:`MAX_CACHED_TEXT` long."""
    if len(text) <= MAX_CACHED_TEXT:
        return _parse_cached(text, allowed)
    return _parse_uncached(text, allowed)


def _parse_uncached(text: str, allowed: frozenset[str]) -> Template:
    parts: list[str | tuple[int, CompiledExpression]] = []
    index = 0
    for start, begin, end in _segments(text):
        if start > index:
            parts.append(text[index:start])
        try:
            # `allowed` is lower-cased already: skip compile_expression's normalising copy.
            compiled = _compile_text(text[begin:end], allowed)
        except ExpressionError as exc:
            # Report the place in the whole text; the message keeps GitHub's wording, which
            # quotes the expression and counts within it.
            position = begin + (exc.position or 1)
            raise ExpressionError(exc.message, position, exc.kind) from None
        parts.append((begin + 1, compiled))
        index = end + len(CLOSE)
    if index < len(text):
        parts.append(text[index:])
    expressions = [part for part in parts if not isinstance(part, str)]
    single = len(expressions) == 1 and all(
        not part.strip() for part in parts if isinstance(part, str)
    )
    return Template(text, tuple(parts), single)


_parse_cached = lru_cache(maxsize=4096)(_parse_uncached)


def _segments(text: str) -> Iterator[tuple[int, int, int]]:
    """``(start, begin, end)`` of each segment in turn: where its ``$<<``, its expression and its
    closing ``>>`` start. A ``>>`` inside a quoted string does not close a segment.

    Linear in the text: the next ``>>`` and the next quote are remembered and searched for again
    only once the scan is past them, so no stretch of text is searched twice, however many
    quoted strings or segments there are (searching afresh from every quote and every segment
    was quadratic: seconds for a 100 KB text).
    """
    n = len(text)
    close = quote = -1  # the next '>>' / "'" at or after the scan point, n if there is none
    index = 0
    while True:
        start = text.find(OPEN, index)
        if start < 0:
            return
        i = begin = start + len(OPEN)
        while True:
            if close < i:
                close = text.find(CLOSE, i)
                if close < 0:
                    close = n
            if quote < i:
                quote = text.find("'", i)
                if quote < 0:
                    quote = n
            if close < quote:
                break
            if quote == n:  # and so close == n
                raise _unterminated(start, "")
            # Skip the quoted string. An escaped quote ('') reads as two strings back to back,
            # which end in the same place.
            end_quote = text.find("'", quote + 1)
            if end_quote < 0:
                raise _unterminated(start, " (a quoted string in it is not closed)")
            i = end_quote + 1
        yield start, begin, close
        index = close + len(CLOSE)


def _unterminated(start: int, detail: str) -> ExpressionError:
    return ExpressionError(
        f"Unterminated expression: the '{OPEN}' at position {start + 1} has no closing '{CLOSE}'{detail}",
        start + 1,
        "parsing",
    )
