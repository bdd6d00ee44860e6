"""The built-in functions, with GitHub's behaviour and error messages.

Each ``build_*`` receives the compiled arguments (closures taking the evaluation state) and
returns the closure for the call. Arguments are evaluated only when GitHub evaluates them
(``contains`` looks at its second argument only if the first is a string or a non-empty array,
``format`` only at the arguments its format string uses), so the same expressions fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ..errors import ExpressionError
from .coercion import (
    ARRAY,
    KIND_NAMES,
    NULL,
    NUMBER,
    STRING,
    equal,
    fold,
    kind_of,
    to_string,
)
from .nodes import Literal, Node
from .state import EvalState

__all__ = ["FUNCTIONS", "STATUS_FUNCTIONS", "build_call", "parse_format", "to_json"]

Fn = Callable[[EvalState], Any]

FUNCTIONS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "contains": (2, 2),
        "startswith": (2, 2),
        "endswith": (2, 2),
        "format": (1, 255),
        "join": (1, 2),
        "tojson": (1, 1),
        "fromjson": (1, 1),
        "success": (0, 0),
        "failure": (0, 0),
        "always": (0, 0),
        "cancelled": (0, 0),
    }
)
"""Function name (lower case; names are case-insensitive) -> (fewest, most) arguments."""

STATUS_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})


def build_call(name: str, args: tuple[Fn, ...], nodes: tuple[Node, ...], position: int) -> Fn:
    """The closure for a call of the built-in ``name`` (already checked to exist, right arity)."""
    return _BUILDERS[name](args, nodes, position)


def _is_primitive(value: Any) -> bool:
    return kind_of(value) <= STRING


# --- string tests -----------------------------------------------------------------------------


def _build_contains(args: tuple[Fn, ...], nodes: tuple[Node, ...], position: int) -> Fn:
    search_fn, item_fn = args

    def contains(state: EvalState) -> bool:
        search = search_fn(state)
        kind = kind_of(search)
        if kind <= STRING:
            item = item_fn(state)
            return _is_primitive(item) and fold(to_string(item)) in fold(to_string(search))
        if kind == ARRAY and len(search) > 0:
            item = item_fn(state)
            return any(equal(item, element) for element in search)
        return False

    return contains


def _affix_builder(test: Callable[[str, str], bool]) -> Callable[..., Fn]:
    def build(args: tuple[Fn, ...], nodes: tuple[Node, ...], position: int) -> Fn:
        text_fn, affix_fn = args

        def affix(state: EvalState) -> bool:
            text = text_fn(state)
            if not _is_primitive(text):
                return False
            part = affix_fn(state)
            return _is_primitive(part) and test(fold(to_string(text)), fold(to_string(part)))

        return affix

    return build


# --- format -----------------------------------------------------------------------------------


class _FormatError(Exception):
    pass


Piece = str | tuple[int, str]  # literal text, or (argument index, format specifiers)


def parse_format(fmt: str, supplied: int) -> list[Piece]:
    """Split a format string like .NET's ``String.Format`` (GitHub's ``Format.cs``)."""
    pieces: list[Piece] = []
    index, end = 0, len(fmt)
    while index < end:
        lbrace = fmt.find("{", index)
        rbrace = fmt.find("}", index)
        if lbrace >= 0 and (rbrace < 0 or rbrace > lbrace):
            if fmt.startswith("{", lbrace + 1):  # "{{" is a literal "{"
                pieces.append(fmt[index : lbrace + 1])
                index = lbrace + 2
                continue
            placeholder = _read_placeholder(fmt, lbrace + 1) if rbrace > lbrace + 1 else None
            if placeholder is None:
                raise _FormatError(f"The following format string is invalid: {fmt}")
            arg, specifiers, rbrace = placeholder
            if arg >= supplied:
                raise _FormatError(
                    f"The following format string references more arguments than were supplied: {fmt}"
                )
            if lbrace > index:
                pieces.append(fmt[index:lbrace])
            pieces.append((arg, specifiers))
            index = rbrace + 1
        elif rbrace >= 0:
            if not fmt.startswith("}", rbrace + 1):
                raise _FormatError(f"The following format string is invalid: {fmt}")
            pieces.append(fmt[index : rbrace + 1])  # "}}" is a literal "}"
            index = rbrace + 2
        else:
            pieces.append(fmt[index:])
            break
    return pieces


def _read_placeholder(fmt: str, start: int) -> tuple[int, str, int] | None:
    """``(argument index, specifiers, index of the closing brace)`` of ``{N}`` / ``{N:spec}``."""
    digits_end = start
    while digits_end < len(fmt) and fmt[digits_end] in "0123456789":
        digits_end += 1
    if digits_end == start:
        return None
    arg = int(fmt[start:digits_end])
    if arg > 255:  # .NET reads the index as a byte
        return None
    if fmt.startswith("}", digits_end):
        return arg, "", digits_end
    if not fmt.startswith(":", digits_end):
        return None
    specifiers: list[str] = []
    index = digits_end + 1
    while index < len(fmt):
        char = fmt[index]
        if char != "}":
            specifiers.append(char)
            index += 1
        elif fmt.startswith("}", index + 1):
            specifiers.append("}")
            index += 2
        else:
            return arg, "".join(specifiers), index
    return None


def _build_format(args: tuple[Fn, ...], nodes: tuple[Node, ...], position: int) -> Fn:
    fmt_fn, arg_fns = args[0], args[1:]
    supplied = len(arg_fns)
    fixed: list[Piece] | None = None
    fixed_error: str | None = None
    if isinstance(nodes[0], Literal):
        # The usual case: split the format string once, at compile time. An invalid one still
        # fails only when evaluated, as in GitHub.
        try:
            fixed = parse_format(to_string(nodes[0].value), supplied)
        except _FormatError as exc:
            fixed_error = str(exc)

    def format_(state: EvalState) -> str:
        pieces = fixed
        if pieces is None:
            if fixed_error is not None:
                raise ExpressionError(fixed_error, position, "evaluation")
            try:
                pieces = parse_format(to_string(fmt_fn(state)), supplied)
            except _FormatError as exc:
                raise ExpressionError(str(exc), position, "evaluation") from None
        values: list[Any] = [None] * supplied
        texts: list[str | None] = [None] * supplied
        out: list[str] = []
        length = 0
        for piece in pieces:
            if isinstance(piece, str):
                text = piece
            else:
                arg, specifiers = piece
                cached = texts[arg]
                if cached is None:
                    values[arg] = arg_fns[arg](state)
                    cached = texts[arg] = to_string(values[arg])
                text = cached
                if specifiers:
                    kind = KIND_NAMES[kind_of(values[arg])]
                    raise ExpressionError(
                        f"The format specifiers '{specifiers}' are not valid for objects of type '{kind}'",
                        position,
                        "evaluation",
                    )
            out.append(text)
            length += len(text)
            if 2 * length > state.budget:  # stop before the pieces add up to too much
                state.charge_text(length, position, "format(...)")
        state.charge_text(length, position, "format(...)")
        return "".join(out)

    return format_


# --- join -------------------------------------------------------------------------------------


def _build_join(args: tuple[Fn, ...], nodes: tuple[Node, ...], position: int) -> Fn:
    items_fn = args[0]
    separator_fn = args[1] if len(args) > 1 else None

    def join(state: EvalState) -> str:
        items = items_fn(state)
        kind = kind_of(items)
        if kind == ARRAY and len(items) > 0:
            separator = ","
            if separator_fn is not None and len(items) > 1:
                chosen = separator_fn(state)
                if _is_primitive(chosen):
                    separator = to_string(chosen)
            texts: list[str] = []
            length = len(separator) * (len(items) - 1)
            for item in items:
                text = to_string(item)
                texts.append(text)
                length += len(text)
                if 2 * length > state.budget:
                    state.charge_text(length, position, "join(...)")
            state.charge_text(length, position, "join(...)")
            return separator.join(texts)
        if kind <= STRING:
            return to_string(items)
        return ""

    return join


# --- JSON -------------------------------------------------------------------------------------

_END = object()
# Newtonsoft.Json (GitHub's serializer) also escapes these, which Python's json leaves as is.
_EXTRA_ESCAPES = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def _json_string(text: str) -> str:
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted if quoted.isascii() else quoted.translate(_EXTRA_ESCAPES)


def _json_open(value: Any, stack: list[list[Any]]) -> str:
    """The text that starts ``value``; a non-empty container is pushed to be written item by item."""
    kind = kind_of(value)
    if kind == NULL:
        return "null"
    if kind == STRING:
        return _json_string(to_string(value))
    if kind <= NUMBER:
        return to_string(value)  # booleans and numbers read the same in JSON (NaN aside, as GitHub)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        stack.append([iter(value.items()), True, True])
        return "{"
    if kind == ARRAY:
        if not value:
            return "[]"
        stack.append([iter(value), False, True])
        return "["
    return "{}"  # an object GitHub cannot look into


def to_json(value: Any, state: EvalState, position: int) -> str:
    """``value`` as GitHub's ``toJSON`` writes it: two-space indent, ``"key": value``.

    Written with an explicit stack, so arbitrarily nested data cannot exhaust Python's stack, and
    charged to the budget as it grows, so large or cyclic data stops at the memory limit.
    """
    stack: list[list[Any]] = []  # [iterator, is object, is first item]
    out = [_json_open(value, stack)]
    length = len(out[0])
    while stack:
        frame = stack[-1]
        item: Any = next(frame[0], _END)
        depth = len(stack)
        if item is _END:
            stack.pop()
            text = "\n" + "  " * (depth - 1) + ("}" if frame[1] else "]")
        else:
            lead = "\n" if frame[2] else ",\n"
            frame[2] = False
            if frame[1]:
                key, item = item
                text = f"{lead}{'  ' * depth}{_json_string(to_string(key))}: {_json_open(item, stack)}"
            else:
                text = f"{lead}{'  ' * depth}{_json_open(item, stack)}"
        out.append(text)
        length += len(text)
        if 2 * length > state.budget:
            state.charge_text(length, position, "toJSON(...)")
    state.charge_text(length, position, "toJSON(...)")
    return "".join(out)


def _build_to_json(args: tuple[Fn, ...], nodes: tuple[Node, ...], position: int) -> Fn:
    (value_fn,) = args

    def to_json_(state: EvalState) -> str:
        return to_json(value_fn(state), state, position)

    return to_json_


_EXACT_INT = 2**53


def _json_int(text: str) -> int | float:
    # GitHub reads every JSON number as a double; keep ints where a double would be exact.
    value = int(text)
    return value if -_EXACT_INT <= value <= _EXACT_INT else float(text)


def _build_from_json(args: tuple[Fn, ...], nodes: tuple[Node, ...], position: int) -> Fn:
    (text_fn,) = args

    def from_json(state: EvalState) -> Any:
        text = to_string(text_fn(state))
        try:
            return json.loads(text, parse_int=_json_int)
        except RecursionError:
            problem = "the value is nested too deeply"
        except ValueError as exc:
            problem = str(exc)
        raise ExpressionError(
            f"Error parsing JSON when evaluating fromJson: {problem}", position, "evaluation"
        )

    return from_json


# --- status -----------------------------------------------------------------------------------


def _status_builder(status: str | None) -> Callable[..., Fn]:
    def build(args: tuple[Fn, ...], nodes: tuple[Node, ...], position: int) -> Fn:
        if status is None:
            return _always

        def check(state: EvalState) -> bool:
            return state.status == status

        return check

    return build


def _always(state: EvalState) -> bool:
    return True


_BUILDERS: dict[str, Callable[[tuple[Fn, ...], tuple[Node, ...], int], Fn]] = {
    "contains": _build_contains,
    "startswith": _affix_builder(str.startswith),
    "endswith": _affix_builder(str.endswith),
    "format": _build_format,
    "join": _build_join,
    "tojson": _build_to_json,
    "fromjson": _build_from_json,
    "success": _status_builder("success"),
    "failure": _status_builder("failure"),
    "cancelled": _status_builder("cancelled"),
    "always": _status_builder(None),
}
