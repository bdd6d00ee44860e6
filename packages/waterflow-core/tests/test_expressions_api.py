"""The public API of waterflow_core.expressions: compiling, static facts, templates."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

from waterflow_core.errors import ExpressionError
from waterflow_core.expressions import (
    FUNCTIONS,
    KNOWN_CONTEXTS,
    Call,
    CompiledExpression,
    Reference,
    Template,
    compile_expression,
    compiler,
    evaluate,
    parse_template,
    render_template,
    template,
)
from waterflow_core.expressions.compiler import MAX_CACHED_TEXT

CONTEXTS: dict[str, Any] = {
    "steps": {"build": {"outputs": {"result": "ok"}, "outcome": "success"}},
    "inputs": {"replicas": 3, "hosts": ["a", "b"]},
    "matrix": {"step": "build"},
}


def test_compile_is_cached_by_text_and_contexts() -> None:
    first = compile_expression("inputs.replicas > 1")
    assert isinstance(first, CompiledExpression)
    assert first.source == "inputs.replicas > 1"
    assert compile_expression("inputs.replicas > 1") is first
    assert compile_expression("inputs.replicas > 1", allowed_contexts=["INPUTS"]) is not first


def test_only_short_texts_are_cached() -> None:
    # 4096 cached texts of up to 1 MiB each would keep gigabytes alive: longer texts are
    # compiled on every call (their short expressions are still cached).
    short = "'" + "a" * (MAX_CACHED_TEXT - 2) + "'"
    long = "'" + "a" * (MAX_CACHED_TEXT - 1) + "'"
    assert compile_expression(short) is compile_expression(short)
    assert compile_expression(long) is not compile_expression(long)
    assert evaluate(long, {}) == "a" * (MAX_CACHED_TEXT - 1)
    assert compile_expression(long).source == long
    short_text = "$<< 1 >>" + "x" * (MAX_CACHED_TEXT - 8)
    long_text = short_text + "x"
    assert parse_template(short_text) is parse_template(short_text)
    assert parse_template(long_text) is not parse_template(long_text)
    assert parse_template(long_text).expressions[0][1] is compile_expression(" 1 ")
    assert render_template(long_text, {}) == "1" + "x" * (MAX_CACHED_TEXT - 7)
    compiler._compile_cached.cache_clear()  # bench/bench_load.py empties the caches so
    template._parse_cached.cache_clear()
    cached = compiler._compile_cached.cache_info().currsize, template._parse_cached.cache_info().currsize
    assert cached == (0, 0)
    compile_expression(long)
    parse_template(long_text)
    parse_template("$<< 'x" + "y" * MAX_CACHED_TEXT + "' >>")  # one long expression in it
    cached = compiler._compile_cached.cache_info().currsize, template._parse_cached.cache_info().currsize
    assert cached == (1, 0)  # only " 1 "


def test_evaluate_a_compiled_condition() -> None:
    compiled = compile_expression("success() && steps.build.outputs.result == 'OK' && inputs.replicas > 1")
    assert compiled.evaluate(CONTEXTS) is True
    assert compiled.evaluate(CONTEXTS, status="failure") is False


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("steps.build.outputs.x", [Reference("steps", ("build", "outputs", "x"), 1)]),
        ("steps['build'].outcome", [Reference("steps", ("build", "outcome"), 1)]),
        ("STEPS.Build", [Reference("steps", ("Build",), 1)]),
        ("inputs.hosts[0].name", [Reference("inputs", ("hosts", 0, "name"), 1)]),
        ("needs.*.result", [Reference("needs", (), 1)]),
        ("inputs.hosts[1.5]", [Reference("inputs", ("hosts",), 1)]),
        (
            "steps[matrix.step].outcome",
            [Reference("steps", (), 1), Reference("matrix", ("step",), 7)],
        ),
        ("fromJSON(inputs.x).y", [Reference("inputs", ("x",), 10)]),
        ("inputs == inputs.a", [Reference("inputs", (), 1), Reference("inputs", ("a",), 11)]),
        ("format('{0}', 1)", []),
    ],
)
def test_references(expression: str, expected: list[Reference]) -> None:
    assert list(compile_expression(expression).references) == expected


def test_calls_and_status_functions() -> None:
    compiled = compile_expression("format('{0}', Success()) || toJSON(1)")
    assert compiled.calls == (Call("format", 2, 1), Call("success", 0, 15), Call("tojson", 1, 29))
    assert compiled.uses_status_function
    assert compile_expression("!cancelled()").uses_status_function
    assert not compile_expression("steps.build.outcome == 'failure'").uses_status_function


@pytest.mark.parametrize(
    ("status", "results"),
    [
        ("success", [True, False, False, True]),
        ("failure", [False, True, False, True]),
        ("cancelled", [False, False, True, True]),
    ],
)
def test_status_functions(status: str, results: list[bool]) -> None:
    names = ["success()", "failure()", "cancelled()", "always()"]
    assert [evaluate(name, {}, status=status) for name in names] == results


def test_an_unknown_status_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="status"):
        evaluate("always()", {}, status="skipped")


def test_allowed_contexts() -> None:
    assert compile_expression("Custom.x", allowed_contexts={"custom"}).evaluate({"custom": {"X": 1}}) == 1
    with pytest.raises(ExpressionError) as raised:
        compile_expression("1 == inputs.x", allowed_contexts={"custom"})
    assert raised.value.kind == "parsing"
    assert raised.value.position == 6
    assert raised.value.message.startswith("Unrecognized named-value: 'inputs'. Located at position 6")


def test_evaluate_accepts_known_contexts_and_those_given() -> None:
    assert evaluate("steps.x", {}) is None  # known, just absent
    assert evaluate("extra.value", {"Extra": {"value": 2}}) == 2
    with pytest.raises(ExpressionError, match="Unrecognized named-value: 'github'"):
        evaluate("github.sha", {})


def test_known_contexts_and_functions() -> None:
    documented = {"inputs", "vars", "env", "secrets", "steps", "needs", "matrix", "server", "loop"}
    assert documented | {"workflow"} <= KNOWN_CONTEXTS
    assert FUNCTIONS["format"] == (1, 255)
    assert FUNCTIONS["join"] == (1, 2)
    assert FUNCTIONS["startswith"] == (2, 2)
    status = {name for name, arity in FUNCTIONS.items() if arity == (0, 0)}
    assert status == {"success", "failure", "always", "cancelled"}


def test_results_are_plain_data() -> None:
    value = evaluate("inputs.hosts.*", CONTEXTS)
    assert type(value) is list and value == ["a", "b"]
    assert evaluate("inputs", CONTEXTS) is CONTEXTS["inputs"]  # a reference is not copied
    assert type(evaluate("3", {})) is int
    assert type(evaluate("1.5e1", {})) is int
    assert evaluate("0.25", {}) == 0.25


# --- templates --------------------------------------------------------------------------------


def test_template_kinds() -> None:
    literal = parse_template("plain text")
    assert isinstance(literal, Template)
    assert literal.is_literal and not literal.is_single_expression and literal.expressions == ()
    single = parse_template("  $<< inputs.replicas >>\n")
    assert single.is_single_expression and not single.is_literal
    mixed = parse_template("a $<< 1 >> b $<< 2 >>")
    assert not mixed.is_single_expression
    assert [(offset, compiled.source) for offset, compiled in mixed.expressions] == [(6, " 1 "), (17, " 2 ")]


def test_template_rendering() -> None:
    assert render_template("$<< inputs.replicas >>", CONTEXTS) == 3
    assert render_template(" $<< inputs.hosts >> ", CONTEXTS) == ["a", "b"]
    text = "n=$<< inputs.replicas >>, $<< inputs.hosts >>, $<< null >>!"
    assert render_template(text, CONTEXTS) == "n=3, Array, !"
    assert render_template("$<< 1 >>$<< 2 >>", {}) == "12"
    assert render_template("$<< failure() >>", {}, status="failure") is True
    assert parse_template("x").render({}) == "x"


def test_closing_delimiter_respects_quotes() -> None:
    assert render_template("$<< format('>>{0}''>>', 1) >>", {}) == ">>1'>>"
    assert render_template("[$<< 'a' >>] [$<< 'b' >>]", {}) == "[a] [b]"


def test_template_errors_point_into_the_text() -> None:
    with pytest.raises(ExpressionError) as raised:
        parse_template("echo $<< steps.x")
    assert (raised.value.kind, raised.value.position) == ("parsing", 6)
    assert "no closing '>>'" in raised.value.message
    with pytest.raises(ExpressionError) as raised:
        parse_template("echo $<< 'it >>")
    assert "quoted string" in raised.value.message
    with pytest.raises(ExpressionError) as raised:
        parse_template("ab $<< 1 == github.sha >>")
    # 'github' is at position 7 of the expression text, which starts at offset 7 of the text.
    assert raised.value.position == 13
    assert raised.value.message.startswith("Unrecognized named-value: 'github'. Located at position 7")
    with pytest.raises(ExpressionError) as raised:
        parse_template("x $<< " + "!" * 60 + "true >>")
    assert (raised.value.kind, raised.value.position) == ("parsing", 6)  # the expression's start


def test_parse_template_allowed_contexts() -> None:
    assert parse_template("$<< custom >>", allowed_contexts=["custom"]).render({"custom": 1}) == 1
    with pytest.raises(ExpressionError, match="Unrecognized named-value: 'custom'"):
        parse_template("$<< custom >>")


def test_import_is_cheap_and_does_no_io() -> None:
    code = textwrap.dedent(
        """
        import builtins, io, sys
        import waterflow_core.errors  # the shared package, imported by everything anyway

        def refuse(*args, **kwargs):
            raise AssertionError("I/O at import time")

        builtins.open = io.open = refuse
        import waterflow_core.expressions
        assert "lark" not in sys.modules, "Lark must load on first compile, not on import"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
