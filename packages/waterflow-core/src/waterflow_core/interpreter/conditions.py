"""Expressions evaluated in the workflow: ``if:`` conditions and workflow-side templates.

Parsing is cached per run (per :class:`Evaluator`), so every text is compiled once however many
steps or instances evaluate it. Nothing here reads ``secrets``: the static checks refuse them
outside ``with:``/``env:``, and those are rendered on the agent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import ExpressionError
from ..expressions import (
    OPEN,
    CompiledExpression,
    JsonPath,
    Template,
    compile_expression,
    map_templates,
    parse_template,
    walk_templates,
)
from ..expressions.coercion import truthy

Status = str  # "success" | "failure" | "cancelled"


class EvaluationError(Exception):
    """An expression failed at run time; ``str()`` names the place and the problem."""


class Evaluator:
    """Compiles and evaluates the expressions of one run, with a cache per text."""

    def __init__(self) -> None:
        self._expressions: dict[str, CompiledExpression] = {}
        self._templates: dict[str, Template] = {}

    def expression(self, text: str) -> CompiledExpression:
        compiled = self._expressions.get(text)
        if compiled is None:
            compiled = self._expressions[text] = compile_expression(text)
        return compiled

    def template(self, text: str) -> Template:
        compiled = self._templates.get(text)
        if compiled is None:
            compiled = self._templates[text] = parse_template(text)
        return compiled

    def condition(self, text: str | None, contexts: Mapping[str, Any], status: Status, *, where: str) -> bool:
        """Evaluate an ``if:`` (bare expression or ``$<< >>`` text).

        Without a status function the condition means ``success() && (...)``, as in GitHub
        Actions; no ``if:`` at all means ``success()``.
        """
        if text is None or not text.strip():
            return status == "success"
        value, uses_status = self._value(text, contexts, status, where)
        if not uses_status and status != "success":
            return False
        return truthy(value)

    def truth(self, text: str, contexts: Mapping[str, Any], status: Status, *, where: str) -> bool:
        """Whether an expression (bare or ``$<< >>`` text) is truthy, with no implied ``success()``:
        a value test, such as ``flow/condition``'s ``if`` or ``flow/loop``'s ``break-if``."""
        return truthy(self._value(text, contexts, status, where)[0])

    def _value(self, text: str, contexts: Mapping[str, Any], status: Status, where: str) -> tuple[Any, bool]:
        """The value of a bare expression or ``$<< >>`` text, and whether it calls a status function."""
        try:
            if OPEN in text:
                template = self.template(text)
                uses_status = any(c.uses_status_function for _, c in template.expressions)
                return template.render(dict(contexts), status=status), uses_status
            compiled = self.expression(text)
            return compiled.evaluate(dict(contexts), status=status), compiled.uses_status_function
        except ExpressionError as exc:
            raise EvaluationError(f"{where}: {exc}") from None

    def uses_status(self, text: str | None) -> bool:
        """Whether an ``if:`` calls a status function (else ``success()`` is implied)."""
        if not text or not text.strip():
            return False
        try:
            if OPEN in text:
                return any(c.uses_status_function for _, c in self.template(text).expressions)
            return self.expression(text).uses_status_function
        except ExpressionError:
            return False

    def render(self, value: Any, contexts: Mapping[str, Any], status: Status = "success", *, where: str) -> Any:
        """Render every ``$<< >>`` text inside ``value`` (dicts and lists recursively).

        An error names its place as ``where`` followed by the path inside ``value``
        (``where.key[0]``).
        """

        def render_one(path: JsonPath, text: str) -> Any:
            try:
                return self.template(text).render(dict(contexts), status=status)
            except ExpressionError as exc:
                raise EvaluationError(f"{where}{_suffix(path)}: {exc}") from None

        return map_templates(value, render_one)

    def references(self, value: Any) -> Iterator[tuple[str, str | None]]:
        """``(context, first key or None)`` for every context reference inside ``value``'s templates.

        The first key is lower-cased (names are case-insensitive); ``None`` means the expression
        reads the context as a whole or through a computed key.
        """
        for _, text in walk_templates(value):
            try:
                template = self.template(text)
            except ExpressionError:
                continue  # reported by the agent when it renders the text
            for _, compiled in template.expressions:
                for ref in compiled.references:
                    head = ref.path[0] if ref.path and isinstance(ref.path[0], str) else None
                    yield ref.context.lower(), head.lower() if head is not None else None


def _suffix(path: JsonPath) -> str:
    """``path`` as it continues a place name: ``.key`` for a key, ``[0]`` for a list index."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
