"""The fast parser (``expressions/fastparse.py``) against Lark, the reference (``parser.py``).

For every input: if Lark builds a tree, the fast path builds the same tree (compared by the
nodes' structural repr: shape, values with their types, positions, heights) or declines; if
Lark raises, the fast path declines. It may never raise. Inputs: GitHub's vectors, the
reference page's examples, hand-picked edge cases, seeded random valid expressions and
seeded mutations and token soup. The valid ones must also be *taken* by the fast path (not
just declined), or it would silently stop being fast.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow_core.errors import ExpressionError
from waterflow_core.expressions import KNOWN_CONTEXTS, compile_expression, fastparse
from waterflow_core.expressions.parser import parse, parse_with_lark
from waterflow_core.expressions.template import _segments

DOC = Path(__file__).parents[3] / "docs" / "reference" / "expressions.md"
_ALLOWED = KNOWN_CONTEXTS | {"x", "github"}


def _lark(expression: str, allowed: frozenset[str]) -> str | None:
    """Lark's tree as a repr, or None if Lark rejects the text."""
    try:
        return repr(parse_with_lark(expression, allowed))
    except ExpressionError:
        return None


def check(expression: str, allowed: frozenset[str] = _ALLOWED, *, must_take: bool = False) -> bool:
    """Assert the fast path agrees with Lark on ``expression``; True if Lark accepts it."""
    fast = fastparse.parse(expression, allowed)  # must not raise, whatever the text
    reference = _lark(expression, allowed)
    if reference is None:
        assert fast is None, f"fast path accepted what Lark rejects: {expression!r}"
        return False
    if must_take:
        assert fast is not None, f"fast path declined a valid expression: {expression!r}"
    if fast is not None:
        assert repr(fast) == reference, expression
    return True


# --- corpora ----------------------------------------------------------------------------------


def _directory() -> Path:
    """Where GitHub's vectors are; the same lookup as in test_expressions_conformance.py."""
    override = os.environ.get("WATERFLOW_GHA_VECTORS") or os.environ.get("WATERFLOW_CONFORMANCE_DIR")
    if override:
        root = Path(override)
        nested = root / "gha-expressions"
        return nested if nested.is_dir() else root
    return Path(__file__).parents[3].parent / "shared" / "conformance" / "gha-expressions"


def _vectors() -> list[tuple[str, frozenset[str]]]:
    directory = _directory()
    if not directory.is_dir():
        pytest.skip(
            f"GitHub expression vectors not found at {directory}: they live in shared/ beside the checkout"
            " (CI has them); set WATERFLOW_GHA_VECTORS to run them from elsewhere"
        )
    cases = []
    for path in sorted(directory.glob("*.json")):
        for group in json.loads(path.read_text(encoding="utf-8")).values():
            for case in group:
                allowed = frozenset(name.lower() for name in case.get("contexts", {}))
                cases.append((case["expr"], allowed))
    return cases


def _doc_expressions() -> Iterator[str]:
    fence = re.compile(r"^```([a-z]+(?: [a-z]+)?)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
    for match in fence.finditer(DOC.read_text(encoding="utf-8")):
        for line in match[2].splitlines():
            source = re.split(r"  # (?:=>|!!) ", line)[0]
            if match[1] == "expr" and source.strip():
                yield source
            elif match[1] == "template":
                segments = _segments(source)
                while True:
                    try:
                        _, begin, end = next(segments)
                    except (StopIteration, ExpressionError):
                        break
                    yield source[begin:end]


def test_github_vectors() -> None:
    vectors = _vectors()
    assert len(vectors) > 900
    accepted = taken = 0
    for expression, allowed in vectors:
        if check(expression, allowed):
            accepted += 1
            taken += fastparse.parse(expression, allowed) is not None
    # Declined valid vectors are the depth-limit ones only (nested 50 deep: left to Lark).
    assert accepted - taken <= 5, (accepted, taken)


def test_reference_page_examples() -> None:
    examples = list(_doc_expressions())
    assert len(examples) > 50
    allowed = KNOWN_CONTEXTS | {"server"}
    for expression in examples:
        check(expression, allowed, must_take=len(expression) < 200)


EDGE_CASES = [
    # keywords: literals where an operand starts, property names after a dot
    "true", "false", "null", "NaN", "Infinity", "True", "NULL", "nan", "infinity",
    "inputs.true", "inputs.NaN", "inputs.null.false", "x.Infinity", "true()", "NaN.x", "true.x",
    "null[0]", "'a'.length", "1[0]", "(1)[0]", "('a').b", "(null).x",
    # numbers in every format
    "0", "-0", "+0", "-0.0", "00", "1.", ".5", "-.5", "+.5e-3", "1e3", "1E+3", "1e400", "-1e400",
    "1e-400", "1.5e", "1.2.3", "1..2", "0x1F", "0xff", "0X1F", "0x", "0x7FFFFFFF", "0x80000000",
    "0xFFFFFFFF", "0x100000000", "0o17", "0o8", "0b1", "-NaN", "+NaN", "-Infinity", "+infinity",
    "-INFINITY", "Infinity1", "9007199254740992", "9007199254740993", "123456789012345",
    "1234567890123456", "1_000", "1a", "+", "-", ".", "..", ".e5", "1*", "1'a'", "٣", "1٣",
    "x[1.5]", "x[-1]", "x[0x1]", "x.5", "x .5", "x. 5", "(1).5", "x[0].5", "x[.5]",
    # strings
    "''", "''''", "'it''s'", "'a''", "'a'''", "'a' 'b'", "'", "'''", "'>>'", "'a\nb'", "'\u3000'",
    # names
    "x", "X", "Inputs.Version", "inputs.a-b", "inputs.a'b", "inputs.a*", "inputs.é", "é", "_x",
    "inputs._", "inputs.-a", "inputs.1a", "inputs.a1", "a-b", "inputs-x", "unknown", "unknown.x",
    "inputs.a.b.c.d.e", "x.*", "x[*]", "x. *", "x[ * ]", "x.*.a", "x[*].a[*]", "x[*", "x.*]",
    "x[x]", "x[x[x]]", "x['a']", "x[ 'a' ]", "x[true]", "x[null]", "x[*][0]",
    # calls
    "success()", "SUCCESS()", "success ()", "success( )", "success(1)", "always(),", "format()",
    "format('{0}', 1, 2)", "contains('a')", "contains('a', 'b', 'c')", "foo()", "inputs()",
    "inputs.x()", "(success)()", "toJSON(x)", "fromjson('1')", "join(x.*, ',')", "format('a',)",
    "format(,'a')", "success()()", "success()[0]", "success().x", "f(",
    # operators, precedence, whitespace
    "!x", "!!x", "! x", "!=", "x != x", "x!=x", "x !== x", "x === x", "x = x", "x & x", "x | x",
    "x && x || x", "x || x && x", "x == x < x", "x < x == x", "x <= x >= x", "!x == x",
    "!x.a", "x&&x", "x ||", "|| x", "(x)", "((x))", "(x", "x)", "()", "(x, x)", "x,x",
    "x\t&&\nx\r||\x0bx\x0c", "x\x85&&\xa0x\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000",
    "x\x1c", "x\u200b", " ", "\t\n", "", "x ", " x", "x @", "@", "$x", "x$", "\ud800", "x.\ud800",
    "x.a\u0301", "x[\x00]", "'\x00'",
]  # fmt: skip


@pytest.mark.parametrize("expression", EDGE_CASES)
def test_edge_case(expression: str) -> None:
    check(expression)


# --- random valid expressions -----------------------------------------------------------------

_NUMBERS = [
    "0", "1", "42", "-7", "+3", "3.25", ".5", "5.", "-0", "-0.0", "1e3", "2.5E-3", "1e400",
    "0x1F", "0xffffffff", "0o17", "123456789012345678", "0.1", "-.25e+2", "-Infinity", "+infinity",
]  # fmt: skip
_STRINGS = ["''", "'a'", "'it''s'", "'A b'", "''''", "'{0}'", "'>>'", "'ß'", "' 1 '"]
_KEYWORDS = ["true", "false", "null", "NaN", "Infinity"]
_CONTEXTS = ["inputs", "Inputs", "steps", "STEPS", "env", "x", "matrix", "needs", "github"]
_PROPERTIES = ["a", "B", "out-put", "_x", "true", "null", "NaN", "x1", "Infinity", "if"]
_FUNCTIONS = [
    ("success", 0), ("Always", 0), ("contains", 2), ("StartsWith", 2), ("endswith", 2),
    ("format", 1), ("format", 3), ("join", 1), ("join", 2), ("toJSON", 1), ("fromJson", 1),
]  # fmt: skip
_BINARY = ["==", "!=", "<", "<=", ">", ">=", "&&", "||"]
_SPACES = ["", "", "", " ", "  ", "\t", "\n", "\u3000", "\xa0"]


def _space(rng: random.Random) -> str:
    return rng.choice(_SPACES)


def _access(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if roll < 0.5 or depth > 4:
        text = rng.choice(_CONTEXTS)
    elif roll < 0.75:
        name, count = rng.choice(_FUNCTIONS)
        args = f",{_space(rng)}".join(_expression(rng, depth + 1) for _ in range(count))
        text = f"{name}{_space(rng)}({args})"
    else:
        text = f"({_space(rng)}{_expression(rng, depth + 1)}{_space(rng)})"
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        suffix = rng.random()
        sp = _space(rng)
        if suffix < 0.45:
            text += f"{sp}.{sp}{rng.choice(_PROPERTIES)}"
        elif suffix < 0.6:
            text += rng.choice([".*", "[*]", f"[{sp}*{sp}]"])
        elif depth < 4:
            text += f"[{sp}{_expression(rng, depth + 1)}{sp}]"
    return text


def _expression(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 5 or roll < 0.3:
        leaf = rng.random()
        if leaf < 0.4:
            return rng.choice(_NUMBERS)
        if leaf < 0.7:
            return rng.choice(_STRINGS)
        return rng.choice(_KEYWORDS)
    if roll < 0.55:
        return _access(rng, depth)
    if roll < 0.65:
        return "!" * rng.randint(1, 3) + _space(rng) + _expression(rng, depth + 1)
    left, right = _expression(rng, depth + 1), _expression(rng, depth + 1)
    return f"{left}{_space(rng)}{rng.choice(_BINARY)}{_space(rng)}{right}"


@pytest.mark.parametrize("seed", range(10))
def test_random_valid_expressions(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        expression = _expression(rng)
        assert check(expression, must_take=True) or "Exceeded max expression depth" in _why(expression)


def _why(expression: str) -> str:
    try:
        parse_with_lark(expression, _ALLOWED)
    except ExpressionError as exc:
        return exc.message
    return ""


# --- invalid and random text ------------------------------------------------------------------

_PIECES = [
    "(", ")", "[", "]", ",", ".", "*", "!", "!=", "==", "<", "<=", ">", ">=", "&&", "||", "=", "&",
    "|", "'", "''", "'a'", "1", "-1", ".5", "1.2.3", "0x1f", "0o7", "1e400", "NaN", "-NaN", "true",
    "null", "Infinity", "inputs", "steps", "x", "a-b", "unknown", "format", "contains", "success",
    "toJSON", "@", "é", "\U0001f60a", " ", "\n", "\u3000", "\x1c", "$", "+", "-", "0", "_",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(10))
def test_mutated_expressions(seed: int) -> None:
    """Valid expressions with one character deleted, inserted or replaced: mostly invalid."""
    rng = random.Random(100 + seed)
    alphabet = "()[],.*!=<>&|' -+0189aexA_é\t"
    for _ in range(300):
        text = _expression(rng)
        at = rng.randrange(len(text) + 1)
        edit = rng.random()
        if edit < 0.33:
            text = text[:at] + text[at + 1 :]
        elif edit < 0.66:
            text = text[:at] + rng.choice(alphabet) + text[at:]
        else:
            text = text[:at] + rng.choice(alphabet) + text[at + 1 :]
        check(text)


@pytest.mark.parametrize("seed", range(10))
def test_token_soup(seed: int) -> None:
    rng = random.Random(200 + seed)
    for _ in range(300):
        text = "".join(rng.choice(_PIECES) + " " * (rng.random() < 0.3) for _ in range(rng.randint(0, 12)))
        check(text)


@pytest.mark.parametrize("seed", range(5))
def test_random_characters(seed: int) -> None:
    """Arbitrary code points, surrogates included: never an exception, never a wrong tree."""
    rng = random.Random(300 + seed)
    for _ in range(300):
        length = rng.randint(0, 15)
        text = "".join(chr(rng.choice([rng.randrange(0x80), rng.randrange(0x110000)])) for _ in range(length))
        check(text)


# --- limits and integration -------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "!" * 49 + "x",  # depth 50: taken
        "!" * 50 + "x",  # depth 51: Lark reports it
        "x" + ".a" * 48,
        "x" + ".a" * 49,
        "(" * fastparse.MAX_NESTING + "x" + ")" * fastparse.MAX_NESTING,
        "(" * (fastparse.MAX_NESTING + 1) + "x" + ")" * (fastparse.MAX_NESTING + 1),
        "(" * 5000 + "1" + ")" * 5000,  # no tree level, but too much nesting for recursion
        "x[" * 3000 + "1" + "]" * 3000,
        "1 && " * 3000 + "0",
        "1 == " * 100 + "1",
    ],
)
def test_depth_and_nesting(expression: str) -> None:
    check(expression)


def test_nesting_limit_declines() -> None:
    deep = "(" * (fastparse.MAX_NESTING + 1) + "x" + ")" * (fastparse.MAX_NESTING + 1)
    assert fastparse.parse(deep, _ALLOWED) is None
    assert repr(parse(deep, _ALLOWED)) == repr(parse_with_lark(deep, _ALLOWED))


def test_typical_condition_is_taken() -> None:
    text = "success() && steps.s12.outputs.status == 'ok' && inputs.replicas > 3"
    assert fastparse.parse(text, KNOWN_CONTEXTS) is not None


def test_errors_still_come_from_lark() -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression("inputs.a == nope.b")
    assert raised.value.kind == "parsing"
    assert raised.value.message.startswith("Unrecognized named-value: 'nope'. Located at position 13")


def test_closures_are_built_on_first_evaluation() -> None:
    # Validation compiles and never evaluates: building closures then would be wasted work.
    compiled = compile_expression("inputs.a == 'x' && join(inputs.b.*, '-') != ''")
    assert compiled._fn is None
    contexts = {"inputs": {"a": "X", "b": [{"c": 1}]}}
    assert compiled.evaluate(contexts) is True
    assert compiled._fn is not None
    assert compiled.evaluate(contexts) is True
