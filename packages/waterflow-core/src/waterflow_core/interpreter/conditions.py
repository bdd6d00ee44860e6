"""Expressions evaluated in the workflow: ``if:`` conditions and workflow-side templates.

Parsing is cached per run (per :class:`Evaluator`), so every text is compiled once however many
steps or instances evaluate it. Nothing here reads ``secrets``: the static checks refuse them
outside ``with:``/``env:``, and those are rendered on the agent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import ExpressionError
from ..expressions import CompiledExpression, Template, compile_expression, parse_template

Status = str  # "success" | "failure" | "cancelled"


class EvaluationError(Exception):
    """An expression failed at run time; ``str()`` names the place and the problem."""


def truthy(value: Any) -> bool:
    """GitHub Actions truthiness: ``false``, ``0``, ``-0``, ``""``, ``null`` and NaN are false."""
    if value is None or value is False:
        return False
    if isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        return not (value == 0 or (isinstance(value, float) and math.isnan(value)))
    if isinstance(value, str):
        return value != ""
    return True


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
        try:
            if "$<<" in text:
                template = self.template(text)
                uses_status = any(c.uses_status_function for _, c in template.expressions)
                value = template.render(dict(contexts), status=status)
            else:
                compiled = self.expression(text)
                uses_status = compiled.uses_status_function
                value = compiled.evaluate(dict(contexts), status=status)
        except ExpressionError as exc:
            raise EvaluationError(f"{where}: {exc}") from None
        if not uses_status and status != "success":
            return False
        return truthy(value)

    def uses_status(self, text: str | None) -> bool:
        """Whether an ``if:`` calls a status function (else ``success()`` is implied)."""
        if not text or not text.strip():
            return False
        try:
            if "$<<" in text:
                return any(c.uses_status_function for _, c in self.template(text).expressions)
            return self.expression(text).uses_status_function
        except ExpressionError:
            return False

    def render(self, value: Any, contexts: Mapping[str, Any], status: Status = "success", *, where: str) -> Any:
        """Render every ``$<< >>`` text inside ``value`` (dicts and lists recursively)."""
        if isinstance(value, str):
            if "$<<" not in value:
                return value
            try:
                return self.template(value).render(dict(contexts), status=status)
            except ExpressionError as exc:
                raise EvaluationError(f"{where}: {exc}") from None
        if isinstance(value, dict):
            return {k: self.render(v, contexts, status, where=f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, contexts, status, where=f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    def references(self, value: Any) -> Iterator[tuple[str, str | None]]:
        """``(context, first key or None)`` for every context reference inside ``value``'s templates.

        The first key is lower-cased (names are case-insensitive); ``None`` means the expression
        reads the context as a whole or through a computed key.
        """
        for text in _strings(value):
            if "$<<" not in text:
                continue
            try:
                template = self.template(text)
            except ExpressionError:
                continue  # reported by the agent when it renders the text
            for _, compiled in template.expressions:
                for ref in compiled.references:
                    head = ref.path[0] if ref.path and isinstance(ref.path[0], str) else None
                    yield ref.context.lower(), head.lower() if head is not None else None

    def condition_references(self, text: str | None) -> Iterator[tuple[str, str | None]]:
        if not text:
            return
        if "$<<" in text:
            yield from self.references(text)
            return
        try:
            compiled = self.expression(text)
        except ExpressionError:
            return
        for ref in compiled.references:
            head = ref.path[0] if ref.path and isinstance(ref.path[0], str) else None
            yield ref.context.lower(), head.lower() if head is not None else None


def _strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
