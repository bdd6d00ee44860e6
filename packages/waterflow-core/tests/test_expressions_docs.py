"""Every example in docs/reference/expressions.md gives what the page says it gives.

The page declares its contexts in a ```` ```json contexts ```` block. In ```` ```expr ```` blocks
(expressions) and ```` ```template ```` blocks (text with ``$<< >>``) each line reads
``<input>  # => <JSON value>`` or ``<input>  # !! <kind>: <part of the message>``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from waterflow_core.errors import ExpressionError
from waterflow_core.expressions import evaluate, render_template

DOC = Path(__file__).parents[3] / "docs" / "reference" / "expressions.md"
_FENCE = re.compile(r"^```([a-z]+(?: [a-z]+)?)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_KINDS = {
    type(None): "null", bool: "boolean", int: "number", float: "number",
    str: "string", list: "array", dict: "object",
}


def _blocks() -> list[tuple[str, str]]:
    return [(match[1], match[2]) for match in _FENCE.finditer(DOC.read_text(encoding="utf-8"))]


def _contexts() -> dict[str, Any]:
    found = [body for info, body in _blocks() if info == "json contexts"]
    assert len(found) == 1, "the page must declare exactly one ```json contexts block"
    contexts: dict[str, Any] = json.loads(found[0])
    return contexts


def _examples() -> list[Any]:
    params = []
    for info, body in _blocks():
        if info not in ("expr", "template"):
            continue
        for line in body.splitlines():
            if not line.strip():
                continue
            params.append(pytest.param(info, line, id=f"{info}: {line}"))
    return params


def _same(actual: Any, expected: Any) -> bool:
    if _KINDS.get(type(actual)) != _KINDS.get(type(expected)):
        return False
    if isinstance(actual, list):
        return len(actual) == len(expected) and all(map(_same, actual, expected))
    if isinstance(actual, dict):
        return actual.keys() == expected.keys() and all(_same(actual[k], expected[k]) for k in actual)
    if isinstance(actual, float) and math.isnan(actual):
        return False  # JSON has no NaN, so no example can expect one
    return bool(actual == expected)


def test_the_page_has_examples() -> None:
    assert len(_examples()) > 50


@pytest.mark.parametrize(("language", "line"), _examples())
def test_example(language: str, line: str) -> None:
    run = evaluate if language == "expr" else render_template
    contexts = _contexts()
    if "  # => " in line:
        source, expected = line.rsplit("  # => ", 1)
        assert _same(run(source, contexts), json.loads(expected))
    else:
        assert "  # !! " in line, f"an example needs '  # => value' or '  # !! kind: message': {line!r}"
        source, error = line.rsplit("  # !! ", 1)
        kind, message = error.split(": ", 1)
        with pytest.raises(ExpressionError) as raised:
            run(source, contexts)
        assert raised.value.kind == kind
        assert message in raised.value.message
