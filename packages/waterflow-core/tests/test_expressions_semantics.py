"""GitHub semantics the conformance vectors leave out, and Python data they cannot express."""

from __future__ import annotations

import enum
import math
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from waterflow_core.errors import ExpressionError
from waterflow_core.expressions import evaluate


def ev(expression: str, **contexts: Any) -> Any:
    return evaluate(expression, contexts)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0xFFFFFFFF", -1),  # .NET reads hex as a signed 32-bit integer
        ("0x7FFFFFFF", 2147483647),
        ("0o37777777777", -1),
        ("1.", 1),
        ("1e400 == Infinity", True),
        ("'-infinity' == -Infinity", True),  # .NET parses the symbols ignoring case
        ("' \u00a012\u3000' == 12", True),  # .NET whitespace is trimmed
        ("'1_000' == 1000", False),  # not a number for .NET, though it is for Python
        ("'\u0661' == 1", False),  # only ASCII digits
    ],
)
def test_numbers(expression: str, expected: Any) -> None:
    assert ev(expression) == expected


@pytest.mark.parametrize("expression", ["0x100000000", "0X10", "1e", "1.2.3", "+-1", "1-2"])
def test_bad_number_runs_are_lexing_errors(expression: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        ev(expression)
    assert raised.value.kind == "lexing"
    assert f"Unexpected symbol: '{expression}'" in raised.value.message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.1"),
        (100.0, "100"),
        (123456789012345, "123456789012345"),
        (1234567890123456, "1.23456789012346E+15"),
        (10**400, "Infinity"),
        (-(10**400), "-Infinity"),
        (1e-5, "1E-05"),
        (0.0001, "0.0001"),
        (-0.0, "0"),
        (float("nan"), "NaN"),
        (True, "true"),
        (None, ""),
        ({"a": 1}, "Object"),
        ((1, 2), "Array"),
    ],
)
def test_string_conversion(value: Any, text: str) -> None:
    assert ev("format('{0}', x.v)", x={"v": value}) == text


def test_keywords_are_case_sensitive_and_plain_names_after_a_dot() -> None:
    assert ev("foo.null", foo={"null": 1}) == 1
    with pytest.raises(ExpressionError, match="Unrecognized named-value: 'True'"):
        ev("True")
    with pytest.raises(ExpressionError, match="Unexpected symbol: '\\('"):
        ev("true()")


def test_names_are_case_insensitive_and_exact_case_wins() -> None:
    assert ev("INPUTS.Name", Inputs={"name": "x"}) == "x"
    assert ev("x.key", x={"KEY": 1, "key": 2}) == 2
    assert ev("x.kEy", x={"KEY": 1, "key": 2}) == 1  # the first match in order, as no exact one
    assert ev("x['Straße']", x={"STRASSE": 1, "STRAßE": 2}) == 2  # ß has no one-letter capital
    assert ev("x.I", x={"ı": 1}) is None  # .NET does not fold the dotless i
    assert ev("x[1]", x={"1": "string key", 1: "int key"}) == "string key"


def test_string_order_is_utf16_ignoring_case() -> None:
    assert ev("'\U0001f600' < '\ufffd'")  # a surrogate pair sorts below U+FFFD in UTF-16
    assert ev("'a' < 'B'")
    assert ev("'ä' > 'Z'")


def test_python_data() -> None:
    class Colour(enum.Enum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    class Text(str, enum.Enum):  # noqa: UP042 - the str mixin, as applications write it
        A = "a"

    class Box(Mapping[str, Any]):
        def __init__(self, **items: Any) -> None:
            self._items = items

        def __getitem__(self, key: str) -> Any:
            return self._items[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self._items)

        def __len__(self) -> int:
            return len(self._items)

    contexts = {
        "x": {
            "tuple": ("a", "b"),
            "level": Level.HIGH,
            "text": Text.A,
            "box": Box(Inner=1),
            "opaque": Colour.RED,
            "ordered": OrderedDict(b=1, a=2),
        }
    }
    assert evaluate("x.tuple[1]", contexts) == "b"
    assert evaluate("x.tuple.*", contexts) == ["a", "b"]
    assert evaluate("x.level == 3 && x.level > 2", contexts) is True
    assert evaluate("format('{0}', x.level)", contexts) == "3"
    assert evaluate("x.text == 'A' && format('{0}', x.text) == 'a'", contexts) is True
    assert evaluate("x.box.inner", contexts) == 1
    assert evaluate("toJSON(x.box)", contexts) == '{\n  "Inner": 1\n}'
    assert evaluate("toJSON(x.opaque)", contexts) == "{}"
    assert evaluate("format('{0}', x.opaque)", contexts) == "Object"
    assert evaluate("x.opaque == x.opaque && x.opaque.value == null", contexts) is True
    assert evaluate("x.ordered.*", contexts) == [1, 2]


def test_filters() -> None:
    data = {"a": [{"n": 1, "s": [10, 11]}, {"n": None}, {"m": 3}, "text", [5, 6]]}
    assert ev("x.a.*.n", x=data) == [1, None]  # present-but-null is kept, absent is dropped
    assert ev("x.a.*[0]", x=data) == [5]  # applies [0] to each element
    assert ev("x.a.*.s.*", x=data) == [10, 11]
    assert ev("(x.a.*)[1]", x=data) == [6]  # parentheses do not stop the mapping
    assert ev("x.a[0].s[-1]", x=data) is None
    assert ev("x.a[0].s[1.9]", x=data) == 11
    assert ev("x.a[0].s[3000000000]", x=data) is None
    assert ev("x.a.* == x.a.*", x=data) is False


def test_logical_operators_return_operands_and_short_circuit() -> None:
    assert ev("x.a || x.b", x={"a": "", "b": [1]}) == [1]
    assert ev("x.a && fromJSON('bad')", x={"a": 0}) == 0
    assert ev("x.a || fromJSON('bad')", x={"a": "yes"}) == "yes"
    assert ev("(0 && 1) || (2 && (3 && 4))") == 4


def test_functions_evaluate_only_what_github_evaluates() -> None:
    assert ev("format('plain', fromJSON('bad'))") == "plain"
    assert ev("contains(x, fromJSON('bad'))", x={"a": 1}) is False
    assert ev("contains(x, fromJSON('bad'))", x=[]) is False
    assert ev("startsWith(x, fromJSON('bad'))", x=[1]) is False
    assert ev("join(x, fromJSON('bad'))", x=["one"]) == "one"
    with pytest.raises(ExpressionError) as raised:
        ev("format('{0}', fromJSON('bad'))")
    assert raised.value.kind == "evaluation"


def test_format() -> None:
    assert ev("format('{0}{1}{0}', 'a', 'b')") == "aba"
    assert ev("format(x, 1)", x="{0}-{{}}") == "1-{}"
    assert ev("format('{000}', 7)") == "7"
    with pytest.raises(ExpressionError, match=re.escape("The following format string is invalid: {256}")):
        ev("format('{256}', 1)")
    with pytest.raises(ExpressionError, match=re.escape("The following format string is invalid: {x}")):
        ev("format(x, 1)", x="{x}")
    with pytest.raises(ExpressionError) as raised:
        ev("1 == 1 && format('{0:D2}', 'x')")
    assert raised.value.message == "The format specifiers 'D2' are not valid for objects of type 'String'"
    assert raised.value.position == 11


def test_to_json_and_from_json() -> None:
    value = {"text": "quote\" back\\ nl\n tab\t \u2028 é \x01", "n": [1, 2.5, None, True], 3: {}}
    assert ev("toJSON(x)", x=value) == (
        '{\n  "text": "quote\\" back\\\\ nl\\n tab\\t \\u2028 é \\u0001",\n'
        '  "n": [\n    1,\n    2.5,\n    null,\n    true\n  ],\n  "3": {}\n}'
    )
    assert ev("toJSON(x)", x=float("nan")) == "NaN"
    assert ev("fromJSON('12345678901234567890')") == 12345678901234567890.0
    assert type(ev("fromJSON('[7]')")[0]) is int
    assert math.isinf(ev("fromJSON('Infinity')"))
    assert ev("fromJSON(toJSON(x)) == x", x="same") is True
    for bad in ("''", "'{'", "'[1,]'"):
        with pytest.raises(ExpressionError) as raised:
            ev(f"fromJSON({bad})")
        assert raised.value.kind == "evaluation"
        assert raised.value.message.startswith("Error parsing JSON when evaluating fromJson")


def test_evaluation_errors_carry_the_call_position() -> None:
    with pytest.raises(ExpressionError) as raised:
        ev("1 == 1 && fromJSON('x')")
    assert raised.value.position == 11
