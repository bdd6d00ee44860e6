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

Quoting is not enough where bash *evaluates* a value instead of only expanding it: arithmetic
runs the ``$(...)`` hidden in a value such as ``a[$(cmd)]``, and so does a variable name with a
subscript. :mod:`.scanner` (quoting states, words, commands) and :mod:`.commands` (what each
builtin does with its words) find those places:

- **integer required** (:class:`ShellValueError` when the value is not ``-?[0-9]+``): arithmetic
  (``$(( ))``, ``(( ))``, ``$[ ]``), array subscripts, ``${s:offset:length}``, operands of
  ``[[ -eq -ne -lt -le -gt -ge ]]``, ``let``, ``declare -i`` values, ``RANDOM=`` and friends;
- **refused** (:class:`ShellQuotingError`, no value needed: :func:`check_shell_template`):
  variable names (``printf -v``, ``read``, ``unset``, ``[ -v ]``, ``declare NAME``, ``${!...}``),
  code (``eval``, ``trap``, ``bash -c``, ``mapfile -C``, ``PS4=``), quoted-delimiter heredoc
  bodies, heredoc delimiters and an expression right after a backslash.

What cannot be seen from the text is listed in docs/adr/0019-shell-arithmetic.md: a value stored
in a variable that is used arithmetically later, text parsed again by another program.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..expressions import CLOSE, OPEN, Template, parse_template
from ..expressions.coercion import ARRAY, OBJECT, kind_of, to_string
from .commands import MARK
from .errors import ShellQuotingError, ShellValueError
from .scanner import Scan, Scanner

__all__ = [
    "DEFAULT_PREFIX", "ShellQuotingError", "ShellValueError", "check_shell_template", "render_for_shell",
    "to_shell_string",
]

DEFAULT_PREFIX = "WATERFLOW_EXPR_"
_INTEGER = re.compile(r"-?[0-9]+")


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
    to the command's environment. Raises :class:`ShellQuotingError` where quoting cannot help,
    :class:`ShellValueError` for a non-integer value where bash evaluates arithmetic, and
    :class:`~waterflow_core.errors.ExpressionError` for expression errors.
    """
    if OPEN not in template:
        return template, {}
    parsed = parse_template(template)
    if not parsed.expressions:
        return template, {}
    pieces, scan = _scan(template, parsed)
    env: dict[str, str] = {}
    out = [pieces[0]]
    for n, ((offset, compiled), form) in enumerate(zip(parsed.expressions, scan.forms, strict=True)):
        name = f"{prefix}{n}"
        value = to_shell_string(compiled.evaluate(contexts, status=status))
        if n in scan.integers and not _INTEGER.fullmatch(value):
            # The value is not shown: it may be a secret.
            raise ShellValueError(
                f"{_label(template, offset, compiled.source)} must be an integer here, in {scan.integers[n]}: "
                "bash evaluates it as arithmetic, which can run commands hidden in it",
                position=offset - len(OPEN),
            )
        env[name] = value
        out.append(form.format(name="${" + name + "}"))
        out.append(pieces[n + 1])
    return "".join(out), env


def check_shell_template(template: str) -> None:
    """Raise :class:`ShellQuotingError` if ``template`` has an expression where it is always refused.

    Values are not needed, so this runs at validate time; integer checks happen in
    :func:`render_for_shell`, when the values are known.
    """
    if OPEN in template:
        parsed = parse_template(template)
        if parsed.expressions:
            _scan(template, parsed)


def _scan(template: str, parsed: Template) -> tuple[list[str], Scan]:
    """The text around the expressions, and the scan of the text with each expression as MARK."""
    if MARK in template:
        raise ShellQuotingError("shell text cannot contain NUL characters")
    # `offset` is where the expression text starts (1-based), right after OPEN; the text ends
    # where CLOSE begins. Each span covers the whole `$<< ... >>`, 0-based and end-exclusive.
    spans = [
        (offset - 1 - len(OPEN), offset - 1 + len(compiled.source) + len(CLOSE))
        for offset, compiled in parsed.expressions
    ]
    ends = [0] + [end for _, end in spans]
    pieces = [template[ends[k] : start] for k, (start, _) in enumerate(spans)] + [template[ends[-1] :]]
    labels = [_label(template, offset, compiled.source) for offset, compiled in parsed.expressions]
    positions = [offset - len(OPEN) for offset, _ in parsed.expressions]
    return pieces, Scanner(MARK.join(pieces), labels, positions).scan()


def _label(template: str, offset: int, source: str) -> str:
    """How an error names an expression: its text, and its line when the template has several."""
    text = f"{OPEN} {source.strip()} {CLOSE}"
    if "\n" not in template:
        return text
    line = template.count("\n", 0, offset) + 1
    return f"{text} (line {line})"
