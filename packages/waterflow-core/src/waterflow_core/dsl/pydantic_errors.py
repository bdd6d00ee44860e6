"""Pydantic's validation errors in Waterflow's words: the one translation every checker uses.

The DSL loader, the node registry's ``with:`` checks (so the server's submit and validate, and
``waterflow validate``) describe a pydantic error through :func:`describe` and suggest names
through :func:`did_you_mean`, so the same mistake reads the same everywhere and pydantic's own
wording ("Input should be ...", "Field required", "Extra inputs are not permitted") never
reaches a user.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any

from ._messages import listing, quote

__all__ = ["closest", "describe", "did_you_mean", "one_of"]

# Type errors as what was expected (YAML has mappings and lists, not dictionaries or instances).
_EXPECTED = {
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "set_type": "expected a list",
    "frozen_set_type": "expected a list",
    "bool_type": "expected a boolean (true or false)",
    "bool_parsing": "expected a boolean (true or false)",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_parsing_size": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "decimal_type": "expected a number",
    "decimal_parsing": "expected a number",
    "none_required": "expected nothing (null)",
    "bytes_type": "expected a string",
    "url_type": "expected a URL",
    "url_parsing": "expected a URL",
    "json_invalid": "expected valid JSON",
    "date_type": "expected a date",
    "date_parsing": "expected a date (YYYY-MM-DD)",
    "datetime_type": "expected a date and time",
    "datetime_parsing": "expected a date and time (ISO 8601)",
    "uuid_type": "expected a UUID",
    "uuid_parsing": "expected a UUID",
}
_BOUNDS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "multiple_of": "must be a multiple of {multiple_of}",
}
_KINDS: dict[type, str] = {dict: "a mapping", list: "a list"}
# pydantic's stock phrases, for error types not translated above (a custom type's own errors).
_PHRASES = (
    ("Value error, ", ""),
    ("Assertion failed, ", ""),
    ("Input should be a valid ", "expected a "),
    ("Input should be ", "expected "),
    ("Field required", "required"),
    ("Extra inputs are not permitted", "not allowed here"),
)
_NO_INPUT = object()


def describe(error: Mapping[str, Any]) -> str:
    """One item of ``ValidationError.errors()`` as a message about its value.

    ``missing`` and ``extra_forbidden`` are about keys, and each caller names the key in its own
    words; every other type reads ``expected ..., got <value>`` or states the rule broken. An
    error taken without its input (``include_input=False``, e.g. when the value may be a secret)
    is described without quoting it.
    """
    kind, ctx = error["type"], error.get("ctx") or {}
    value = error.get("input", _NO_INPUT)
    got = "" if value is _NO_INPUT else f", got {_KINDS.get(type(value)) or quote(value)}"
    if kind in _EXPECTED:
        return _EXPECTED[kind] + got
    if kind in ("literal_error", "enum"):
        return f"expected {one_of(str(ctx.get('expected', '')))}{got}"
    if kind == "union_tag_invalid":
        field = str(ctx.get("discriminator", "")).strip("'")
        return f"'{field}' must be {one_of(str(ctx.get('expected_tags', '')))}, got {quote(ctx.get('tag'))}"
    if kind == "union_tag_not_found":
        return f"missing the key '{str(ctx.get('discriminator', '')).strip(chr(39))}' that says which kind it is"
    if kind in _BOUNDS:
        return _BOUNDS[kind].format(**{k: ctx.get(k) for k in ("gt", "ge", "lt", "le", "multiple_of")}) + got
    if kind in ("too_short", "string_too_short", "bytes_too_short"):
        least = ctx.get("min_length", 1)
        if kind == "too_short":
            return f"must have at least {least} {'entry' if least == 1 else 'entries'}"
        return "must not be empty" if least == 1 else f"must be at least {least} characters long"
    if kind in ("too_long", "string_too_long", "bytes_too_long"):
        most = ctx.get("max_length")
        unit = "entries" if kind == "too_long" else "characters"
        return f"must have at most {most} {unit}" if kind == "too_long" else f"must be at most {most} {unit} long"
    if kind == "string_pattern_mismatch":
        return f"{quote(value)} does not match the pattern {quote(ctx.get('pattern'))}"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "not allowed here"
    return _reworded(str(error.get("msg", "")))


def _reworded(message: str) -> str:
    for phrase, replacement in _PHRASES:
        if message.startswith(phrase):
            return replacement + message[len(phrase) :]
    return message


def one_of(expected: str) -> str:
    """pydantic's ``'a', 'b' or 'c'`` as ``one of 'a', 'b', 'c'`` (a single value stays as it is)."""
    head, sep, last = expected.rpartition(" or ")
    return f"one of {head}, {last}" if sep else expected


def closest(word: str, known: Collection[str], *, cutoff: float = 0.6) -> str | None:
    """The name in ``known`` that ``word`` is most likely a typo of, if any is close enough."""
    if len(word) > 100 or not known:  # difflib is quadratic; nobody mistypes 100 characters
        return None
    found = difflib.get_close_matches(word, list(known), n=1, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(word: str, known: Collection[str]) -> str:
    """`` (did you mean 'x'?)``, else `` (expected one of: a, b, ...)``, else nothing."""
    if not known:
        return ""
    match = closest(word, known)
    if match is not None:
        return f" (did you mean '{match}'?)"
    return f" (expected one of: {listing(sorted(known))})"
