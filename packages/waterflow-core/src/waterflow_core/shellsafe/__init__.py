"""Rendering ``$<< >>`` inside shell text without ever making a value shell text.

Each expression is replaced by a reference to an environment variable that holds its value,
quoted for the bash lexical state at that point, so the value is expanded as data and never
re-parsed as code:

=====================  ======================  ==========================================
where the expression   what replaces it        why
=====================  ======================  ==========================================
outside quotes         ``"${V}"``              no word splitting or globbing
``"..."``              ``${V}``                already inside double quotes
``'...'``              ``'"${V}"'``            close, expand double-quoted, reopen
``$'...'``             ``'"${V}"$'``           close, expand double-quoted, reopen as ``$'``
``${...}``             ``"${V}"``              operand words of a parameter expansion
unquoted heredoc body  ``${V}``                the body expands like double quotes
=====================  ======================  ==========================================

Refused (:class:`ShellQuotingError`): quoted-delimiter heredoc bodies (nothing expands there),
arithmetic (``$(( ))``, ``(( ))``, ``$[ ]``, ``${a[...]}`` subscripts — bash evaluates variable
values as arithmetic, which can run ``$(...)`` inside them), a heredoc delimiter and an expression
right after a backslash (it would escape the quoting added here).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from .errors import ExpressionError
from .expressions import CLOSE, OPEN, parse_template
from .expressions.coercion import ARRAY, OBJECT, kind_of, to_string

DEFAULT_PREFIX = "WATERFLOW_EXPR_"
_MARK = "\x00"  # stands for an expression while scanning; bash text cannot contain NUL
_BOUNDARY = " \t\n;&|()<>"


class ShellQuotingError(ExpressionError):
    """An expression sits where no quoting can keep its value from being read as code."""


def to_shell_string(value: Any) -> str:
    """Coerce an expression value to text as GitHub does, except objects and arrays: compact JSON."""
    if kind_of(value) in (ARRAY, OBJECT):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return to_string(value)


def render_for_shell(
    template: str,
    contexts: Mapping[str, Any],
    *,
    status: str = "success",
    prefix: str = DEFAULT_PREFIX,
) -> tuple[str, dict[str, str]]:
    """Return ``(shell text, environment)``: each ``$<< expr >>`` becomes a quoted ``${PREFIXn}``.

    ``environment`` maps ``PREFIXn`` to the string value of the n-th expression; the caller adds it
    to the command's environment. Raises :class:`ShellQuotingError` where quoting cannot help and
    :class:`~waterflow_core.errors.ExpressionError` for expression errors.
    """
    if OPEN not in template:
        return template, {}
    if _MARK in template:
        raise ShellQuotingError("shell text cannot contain NUL characters")
    parsed = parse_template(template)
    if not parsed.expressions:
        return template, {}
    # `offset` is where the expression text starts (1-based), right after OPEN; the text ends
    # where CLOSE begins. Each span covers the whole `$<< ... >>`, 0-based and end-exclusive.
    spans = [
        (offset - 1 - len(OPEN), offset - 1 + len(compiled.source) + len(CLOSE))
        for offset, compiled in parsed.expressions
    ]
    ends = [0] + [end for _, end in spans]
    masked = "".join(template[ends[k] : start] + _MARK for k, (start, _) in enumerate(spans))
    masked += template[ends[-1] :]
    forms = _reference_forms(masked, [start for start, _ in spans])
    env: dict[str, str] = {}
    pieces = masked.split(_MARK)
    out = [pieces[0]]
    for n, ((_, compiled), form) in enumerate(zip(parsed.expressions, forms, strict=True)):
        name = f"{prefix}{n}"
        env[name] = to_shell_string(compiled.evaluate(contexts, status=status))
        out.append(form.format(name="${" + name + "}"))
        out.append(pieces[n + 1])
    return "".join(out), env


# ------------------------------------------------------------------------ bash lexical scan

_CMD, _PARAM, _DQ, _SQ, _ANSI, _ARITH, _HEREDOC = "cmd", "param", "dq", "sq", "ansi", "arith", "heredoc"
_FORMS = {
    _CMD: '"{name}"',
    _PARAM: '"{name}"',
    _DQ: "{name}",
    _SQ: "'\"{name}\"'",
    _ANSI: "'\"{name}\"$'",
    _HEREDOC: "{name}",
}


@dataclass
class _Ctx:
    kind: str
    closer: str = ""  # what ends this context: ")" "`" "}" "))" "]"
    depth: int = 0  # nested ( or { or [ of the same kind, so the right closer is found
    delimiter: str = ""  # heredoc
    strip_tabs: bool = False
    quoted: bool = False


def _reference_forms(masked: str, starts: list[int]) -> list[str]:
    """For each mark in ``masked``, the format string that references the variable safely there."""
    forms: list[str] = []
    stack = [_Ctx(_CMD)]
    pending: list[_Ctx] = []  # heredocs declared on the current line; bodies start after newline
    i, prev, n = 0, "\n", len(masked)

    def refuse(why: str) -> NoReturn:
        raise ShellQuotingError(f"{OPEN} {CLOSE} cannot be used {why}", position=starts[len(forms)] + 1)

    while i < n:
        top, c = stack[-1], masked[i]
        nxt = masked[i + 1] if i + 1 < n else ""
        if top.kind == _HEREDOC and (i == 0 or masked[i - 1] == "\n"):
            end = masked.find("\n", i)
            line = masked[i : end if end >= 0 else n]
            if (line.lstrip("\t") if top.strip_tabs else line) == top.delimiter:
                stack.pop()
                if pending:
                    stack.append(pending.pop(0))
                i = end + 1 if end >= 0 else n
                prev = "\n"
                continue
            if top.quoted:
                if _MARK in line:
                    refuse("in a heredoc with a quoted delimiter (nothing expands there; unquote the delimiter)")
                i = end + 1 if end >= 0 else n
                continue
        if c == _MARK:
            if top.kind == _ARITH:
                refuse(
                    "in bash arithmetic ($(( )), (( )), $[ ], array subscripts): bash evaluates values there as code"
                )
            forms.append(_FORMS[top.kind])
            i, prev = i + 1, "x"
            continue
        if top.kind == _SQ:
            if c == "'":
                stack.pop()
            i, prev = i + 1, c
            continue
        if c == "\\":
            if nxt == _MARK:
                refuse("right after a backslash")
            i, prev = i + 2, "x"
            continue
        if top.kind == _ANSI:
            if c == "'":
                stack.pop()
            i, prev = i + 1, c
            continue
        if c == "$" and nxt in ("(", "{", "["):
            if masked.startswith("$((", i):
                stack.append(_Ctx(_ARITH, "))"))
                i += 3
            else:
                kind = {"(": _CMD, "{": _PARAM, "[": _ARITH}[nxt]
                stack.append(_Ctx(kind, {"(": ")", "{": "}", "[": "]"}[nxt]))
                i += 2
            prev = "x"
            continue
        if c == "`":
            if top.closer == "`":
                stack.pop()
            else:
                stack.append(_Ctx(_CMD, "`"))
            i, prev = i + 1, "x"
            continue
        if top.kind in (_DQ, _HEREDOC):
            if c == '"' and top.kind == _DQ:
                stack.pop()
            i, prev = i + 1, c
            continue
        if top.kind == _ARITH:
            i = _arith_step(stack, masked, i)
            prev = "x"
            continue
        # _CMD and _PARAM: quotes open, brackets nest, and (in _CMD) comments and heredocs.
        if c == "'" or (c == "$" and nxt == "'"):
            stack.append(_Ctx(_ANSI if c == "$" else _SQ))
            i += 2 if c == "$" else 1
        elif c == '"' or (c == "$" and nxt == '"'):
            stack.append(_Ctx(_DQ))
            i += 2 if c == "$" else 1
        elif top.kind == _PARAM:
            if c == "[":
                stack.append(_Ctx(_ARITH, "]"))
            elif c == "{":
                top.depth += 1
            elif c == "}":
                if top.depth:
                    top.depth -= 1
                else:
                    stack.pop()
            i += 1
        elif c == "#" and prev in _BOUNDARY:
            end = masked.find("\n", i)
            end = n if end < 0 else end
            # Nothing in a comment runs; a reference there is harmless, keep the forms aligned.
            forms.extend(_FORMS[_CMD] for _ in range(masked.count(_MARK, i, end)))
            i = end
        elif c == "(" and nxt == "(" and prev in _BOUNDARY:
            stack.append(_Ctx(_ARITH, "))"))
            i += 2
        elif c == "(":
            top.depth += 1
            i += 1
        elif c == ")":
            if top.depth:
                top.depth -= 1
            elif top.closer == ")":
                stack.pop()
            i += 1
        elif c == "<" and masked.startswith("<<", i) and not masked.startswith("<<<", i):
            heredoc, i = _heredoc_operator(masked, i + 2)
            if heredoc is None:
                refuse("as a heredoc delimiter")
            pending.append(heredoc)
        elif c == "\n" and pending:
            stack.append(pending.pop(0))
            i += 1
        else:
            i += 1
        prev = c
    return forms


def _arith_step(stack: list[_Ctx], text: str, i: int) -> int:
    top, c = stack[-1], text[i]
    if c in "([":
        top.depth += 1
    elif top.closer == "))" and text.startswith("))", i) and not top.depth:
        stack.pop()
        return i + 2
    elif c in ")]":
        if top.depth:
            top.depth -= 1
        elif top.closer == c:
            stack.pop()
    elif c in "'\"":
        stack.append(_Ctx(_SQ if c == "'" else _DQ))
    return i + 1


def _heredoc_operator(text: str, i: int) -> tuple[_Ctx | None, int]:
    """Parse ``[-] [blanks] WORD`` after ``<<``; return the pending heredoc and the next index."""
    strip_tabs = text.startswith("-", i)
    i += strip_tabs
    while i < len(text) and text[i] in " \t":
        i += 1
    word, quoted = [], False
    while i < len(text) and text[i] not in _BOUNDARY:
        c = text[i]
        if c == _MARK:
            return None, i
        if c in "'\"":
            close = text.find(c, i + 1)
            close = len(text) if close < 0 else close
            word.append(text[i + 1 : close])
            quoted, i = True, close + 1
        elif c == "\\":
            word.append(text[i + 1 : i + 2])
            quoted, i = True, i + 2
        else:
            word.append(c)
            i += 1
    return _Ctx(_HEREDOC, delimiter="".join(word), strip_tabs=strip_tabs, quoted=quoted), i
