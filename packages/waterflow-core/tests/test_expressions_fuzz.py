"""Random input: whatever the text and the data, only ExpressionError may escape.

Seeded, so a failure reproduces; the seed is in the test id. Two generators: token soup (mostly
invalid text, exercising the lexer and parser errors) and well-formed expressions over random
data (exercising evaluation, coercion and the functions).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from waterflow_core.errors import ExpressionError
from waterflow_core.expressions import evaluate, render_template

_PIECES = [
    "(", ")", "[", "]", ",", ".", "*", "!", "!=", "==", "<", "<=", ">", ">=", "&&", "||", "=", "&",
    "|", "'", "''", "'a'", "'>>'", "1", "-1", ".5", "0x1f", "0o7", "1e400", "NaN", "Infinity",
    "-Infinity", "null", "true", "false", "inputs", "steps", "env", "x", "a-b", "_", "format",
    "contains", "startsWith", "endsWith", "join", "toJSON", "fromJSON", "success", "failure",
    "always", "cancelled", "'{0}'", "'{0}{0}{0}'", "'{'", "'}'", "'[1,[2]]'", "'{\"a\":1}'", "' 12 '",
    "@", "\U0001f60a", " ", "\n", "\t", "\u00a0", "$<<", ">>", "{", "}", "0", "ı", "İ", "ß", "\ud800",
]
_SCALARS = [None, True, False, 0, 1, -1, 2.5, float("nan"), float("inf"), -0.0, 10**20, "", "a", " 3 ",
            "0x10", "true", "ß", "İ", "ı", "\ud800", "[1]", ("t", 1)]
_KEYS = ["a", "A", "b", "x", "X", "0", "1", "*", "", "ı"]
_LEAVES = ["null", "true", "1", "-2.5", "0x10", "NaN", "'a'", "'{0}'", "'[1,2]'", "''", "inputs", "x"]


def _data(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice(_SCALARS)
    if roll < 0.7:
        return [_data(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(_KEYS): _data(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _contexts(rng: random.Random) -> dict[str, Any]:
    return {name: _data(rng) for name in ("inputs", "steps", "x") if rng.random() < 0.8}


def _soup(rng: random.Random) -> str:
    return "".join(rng.choice(_PIECES) + " " * (rng.random() < 0.3) for _ in range(rng.randint(0, 25)))


def _expression(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 4 or roll < 0.25:
        return rng.choice(_LEAVES)
    if roll < 0.35:
        return "!" + _expression(rng, depth + 1)
    if roll < 0.55:
        operator = rng.choice([" == ", " != ", " < ", " <= ", " > ", " >= ", " && ", " || "])
        return _expression(rng, depth + 1) + operator + _expression(rng, depth + 1)
    if roll < 0.75:
        computed = "[" + _expression(rng, depth + 1) + "]"
        suffix = rng.choice([".a", ".*", "[0]", "['A']", "[*]", ".x.*.a", computed])
        base = rng.choice(["inputs", "steps", "x", "(" + _expression(rng, depth + 1) + ")"])
        return base + suffix
    name, count = rng.choice(
        [("contains", 2), ("startsWith", 2), ("endsWith", 2), ("format", rng.randint(1, 4)),
         ("join", rng.randint(1, 2)), ("toJSON", 1), ("fromJSON", 1), ("success", 0), ("always", 0)]
    )
    return f"{name}({', '.join(_expression(rng, depth + 1) for _ in range(count))})"


def _only_expression_errors(
    run: Callable[..., Any], text: str, contexts: dict[str, Any], **kw: Any
) -> None:
    try:
        run(text, contexts, **kw)
    except ExpressionError:
        pass
    except Exception as exc:  # noqa: BLE001 - the point is to catch anything else
        pytest.fail(f"{type(exc).__name__}: {exc} for {text!r} over {contexts!r}")


@pytest.mark.parametrize("seed", range(8))
def test_random_text(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(250):
        text, contexts = _soup(rng), _contexts(rng)
        status = rng.choice(["success", "failure", "cancelled"])
        _only_expression_errors(evaluate, text, contexts, status=status)
        _only_expression_errors(render_template, f"a $<< {text} >> b", contexts)
        _only_expression_errors(render_template, text, contexts)


@pytest.mark.parametrize("seed", range(8))
def test_random_expressions(seed: int) -> None:
    rng = random.Random(1000 + seed)
    for _ in range(250):
        _only_expression_errors(evaluate, _expression(rng), _contexts(rng))
