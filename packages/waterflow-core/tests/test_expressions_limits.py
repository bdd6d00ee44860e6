"""Length, depth and memory limits, and inputs built to exhaust Python's stack or memory."""

from __future__ import annotations

from typing import Any

import pytest

from waterflow_core.errors import ExpressionError
from waterflow_core.expressions import compile_expression, evaluate, parse_template, render_template
from waterflow_core.expressions.compiler import MAX_CACHED_TEXT


def error_of(expression: str, contexts: dict[str, Any] | None = None) -> ExpressionError:
    with pytest.raises(ExpressionError) as raised:
        evaluate(expression, contexts or {})
    return raised.value


def test_expression_length() -> None:
    longest = "'" + "a" * 20998 + "'"
    assert evaluate(longest, {}) == "a" * 20998
    error = error_of(longest + " ")
    assert (error.kind, error.message) == ("limit", "Exceeded max expression length 21000")


@pytest.mark.parametrize(
    "expression",
    [
        "!" * 10000 + "true",
        "inputs[" * 2000 + "1" + "]" * 2000,
        "fromJSON(" * 2000 + "1" + ")" * 2000,
        "1 == " * 3000 + "1",
        "inputs" + ".a" * 5000,
        "inputs" + ".*" * 5000,
    ],
)
def test_deep_nesting_is_a_depth_error(expression: str) -> None:
    error = error_of(expression)
    assert (error.kind, error.message) == ("parsing", "Exceeded max expression depth 50")


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("(" * 10000 + "1" + ")" * 10000, 1),  # parentheses make no tree level (GitHub)
        ("1 && " * 4000 + "0", 0),  # a chain of && is one level
        ("0 || " * 4000 + "2", 2),
        ("(1 && (1 && (1 && (1 && 0))))", 0),
    ],
)
def test_groups_and_chains_are_not_deep(expression: str, value: Any) -> None:
    assert evaluate(expression, {}) == value


def test_typescript_skipped_vectors_positions_count_newlines() -> None:
    # The four position vectors GitHub marks as skipped for its TypeScript implementation.
    expression = "github.event_name == 'push' \n&& true\n&& true\n&& true\n&& !contains(env.COMMIT_MESSAGES)"
    with pytest.raises(ExpressionError) as raised:
        compile_expression(expression, allowed_contexts=["github"])
    assert raised.value.position == 67
    assert raised.value.message.startswith("Unrecognized named-value: 'env'. Located at position 67")


def test_memory_vector() -> None:
    # GitHub's memory vector (skipped as "typescript" in the conformance files): two formats of
    # 40 copies of a ~10 KB JSON text each. Waterflow reports it as kind "limit".
    github = {f"key{n}": "v" * 200 for n in range(48)}
    forty = "{0}" * 40
    expression = f"startswith(format('{forty}', tojson(github)), format('{forty}', tojson(github)))"
    error = error_of(expression, {"github": github})
    assert error.kind == "limit"
    assert "The maximum allowed memory size was exceeded" in error.message
    # One of them alone fits.
    assert len(evaluate(f"format('{forty}', tojson(github))", {"github": github})) > 390_000


@pytest.mark.parametrize(
    "expression",
    [
        "format('{0}{0}{0}{0}{0}{0}{0}{0}', " * 8 + "'0123456789'" + ")" * 8,
        "join(x.big, x.separator)",
        "toJSON(x.big)",
        "toJSON(x.cycle)",
        "x.pairs" + ".*" * 40,
        "toJSON(x.deep)",
        "format('{0}{0}', toJSON(x.half))",
    ],
)
def test_amplification_stops_at_the_memory_limit(expression: str) -> None:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    pairs: list[Any] = []
    pairs.extend([pairs, pairs])  # every level doubles: 2**40 elements if unchecked
    deep: list[Any] = []
    node = deep
    for _ in range(20000):
        node.append([])
        node = node[0]
    contexts = {
        "x": {
            "big": ["x" * 1000] * 600,
            "separator": "-" * 1000,
            "cycle": cycle,
            "pairs": pairs,
            "deep": deep,
            "half": ["y" * 1000] * 300,
        }
    }
    error = error_of(expression, contexts)
    assert error.kind == "limit"
    assert error.message.startswith("The maximum allowed memory size was exceeded")


def test_text_with_expressions_counts_against_the_limit() -> None:
    contexts = {"inputs": {"big": "z" * 300_000}}
    assert len(render_template("$<< inputs.big >>", contexts)) == 300_000  # the value as is
    assert len(render_template("a $<< inputs.big >>", contexts)) == 300_002
    with pytest.raises(ExpressionError) as raised:
        render_template("$<< inputs.big >> $<< inputs.big >>", contexts)
    assert raised.value.kind == "limit"


def test_deeply_nested_json_is_an_evaluation_error() -> None:
    error = error_of("fromJSON(x)", {"x": "[" * 100_000 + "]" * 100_000})
    assert error.kind == "evaluation"
    assert "nested too deeply" in error.message


class _CountingText(str):
    """A text that counts the characters its ``find`` calls pass over."""

    scanned = 0

    def find(self, sub: str, start: Any = None, end: Any = None) -> int:  # type: ignore[override]
        start = 0 if start is None else start
        end = len(self) if end is None else end
        found = str.find(self, sub, start, end)
        self.scanned += (found if found >= 0 else end) - start
        return found


# Near the 1 MiB document cap; searching afresh from every quote or segment went over these
# texts ~10^5 times (minutes each; 2 s at a tenth of the size).
TEMPLATE_SCANS = {
    "many quoted strings": "$<< " + "'a' " * 260_000 + ">>",
    "many segments": "$<< 1 >>" * 130_000,
    "many quoted segments": "$<< 'a' >> " * 95_000,
    "'>>' in every string": "$<< " + "'>>' " * 200_000 + ">>",
    "unclosed after many": "$<< 1 >>" * 130_000 + "$<< '",
}


@pytest.mark.parametrize("text", TEMPLATE_SCANS.values(), ids=TEMPLATE_SCANS.keys())
def test_template_scanning_is_linear(text: str) -> None:
    counting = _CountingText(text)
    assert len(text) > MAX_CACHED_TEXT  # parsed afresh, not from the cache
    try:
        template = parse_template(counting)
    except ExpressionError as error:  # an expression over the length limit, or the unclosed one
        assert error.kind in ("limit", "parsing"), error
    else:
        assert template.expressions
    # Each stretch of text is searched once for '$<<', once for '>>' and once for quotes.
    assert counting.scanned <= 3 * len(text), counting.scanned / len(text)
