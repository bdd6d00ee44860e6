"""The one walk over nested data for ``$<< >>`` templates (``expressions/walk.py``)."""

from __future__ import annotations

from collections import OrderedDict
from types import MappingProxyType
from typing import Any

import pytest

from waterflow_core.errors import ExpressionError
from waterflow_core.expressions import (
    OPEN,
    JsonPath,
    has_templates,
    map_templates,
    render_template,
    walk_templates,
)

DATA: dict[str, Any] = {
    "url": "https://$<< vars.host >>/x",
    "plain": "no template",
    "headers": {"A": "$<< inputs.a >>", "B": "b"},
    "list": ["x", ["$<< 1 >>", {"deep": "$<< 2 >>"}], 3, None, True],
    "almost": "$< < not one",
}


def test_walk_yields_template_strings_with_paths_in_document_order() -> None:
    assert list(walk_templates(DATA)) == [
        (("url",), "https://$<< vars.host >>/x"),
        (("headers", "A"), "$<< inputs.a >>"),
        (("list", 1, 0), "$<< 1 >>"),
        (("list", 1, 1, "deep"), "$<< 2 >>"),
    ]


def test_walk_prefixes_the_given_path() -> None:
    assert list(walk_templates({"k": ["$<< x >>"]}, ("with",))) == [(("with", "k", 0), "$<< x >>")]


def test_walk_of_a_bare_string_and_of_other_values() -> None:
    assert list(walk_templates("a $<< b", ("if",))) == [(("if",), "a $<< b")]  # not parsed: may be invalid
    assert list(walk_templates("${{ github.sha }}")) == []
    for value in (None, 1, 1.5, True, b"$<<"):
        assert list(walk_templates(value)) == []


def test_walk_takes_dict_subclasses_and_tuples_and_nothing_else() -> None:
    value = OrderedDict([("b", ("$<< 1 >>",)), ("a", "$<< 2 >>")])
    assert list(walk_templates(value)) == [(("b", 0), "$<< 1 >>"), (("a",), "$<< 2 >>")]
    # JSON-shaped data only: other containers are leaves.
    assert list(walk_templates([MappingProxyType({"a": "$<< 1 >>"}), {"$<< 2 >>"}])) == []


def test_walk_has_no_recursion_limit() -> None:
    value: Any = "$<< 1 >>"
    for _ in range(5000):
        value = [value]
    ((path, text),) = walk_templates(value)
    assert path == (0,) * 5000
    assert text == "$<< 1 >>"


def test_has_templates() -> None:
    assert has_templates(DATA)
    assert has_templates(["x", {"y": OPEN}])
    assert not has_templates({"a": ["b", 1, None], "c": "${{ x }}"})
    assert not has_templates("")


def test_map_replaces_each_template_by_what_render_returns() -> None:
    seen: list[JsonPath] = []

    def render(path: JsonPath, text: str) -> Any:
        seen.append(path)
        return render_template(text, {"vars": {"host": "h"}, "inputs": {"a": 7}})

    result = map_templates(DATA, render)
    assert result == {
        "url": "https://h/x",
        "plain": "no template",
        "headers": {"A": 7, "B": "b"},
        "list": ["x", [1, {"deep": 2}], 3, None, True],
        "almost": "$< < not one",
    }
    assert seen == [path for path, _ in walk_templates(DATA)]  # the same places, in the same order
    assert DATA["headers"] == {"A": "$<< inputs.a >>", "B": "b"}  # the input is left alone


def test_map_rebuilds_containers_and_keeps_their_kinds() -> None:
    inner = {"k": "v"}
    items = [inner]
    result = map_templates({"t": ("$<< 1 >>", "x"), "l": items}, lambda path, text: path)
    assert result == {"t": (("t", 0), "x"), "l": [{"k": "v"}]}
    assert type(result["t"]) is tuple
    assert result["l"] is not items
    assert result["l"][0] is not inner
    assert type(map_templates(OrderedDict(a=1), lambda path, text: text)) is dict


def test_map_of_a_bare_string_uses_the_given_path() -> None:
    assert map_templates("$<< x >>", lambda path, text: path, ("env", "A")) == ("env", "A")
    assert map_templates("plain", lambda path, text: pytest.fail("not a template")) == "plain"


def test_map_lets_render_errors_through_with_their_place() -> None:
    def render(path: JsonPath, text: str) -> Any:
        try:
            return render_template(text, {})
        except ExpressionError as exc:
            raise LookupError(f"{path}: {exc.message}") from None

    with pytest.raises(LookupError, match=r"^\('a', 1\): Unrecognized named-value: 'nope'"):
        map_templates({"a": ["$<< 1 >>", "$<< nope >>"]}, render)
