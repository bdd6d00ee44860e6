"""The ``$<< ... >>`` expression language: GitHub Actions expressions with Waterflow delimiters.

>>> evaluate("steps.build.outputs.result == 'OK'", {"steps": {"build": {"outputs": {"result": "ok"}}}})
True
>>> render_template("v$<< inputs.version >>", {"inputs": {"version": 2}})
'v2'

Compile once with :func:`compile_expression` / :func:`parse_template` (both cached by text) and
evaluate many times. :func:`walk_templates` and :func:`map_templates` find and render the
templates inside nested data (a step's ``with:``); :data:`OPEN` is the one spelling of ``$<<``.
Everything here is pure and deterministic, and importing it is cheap: Lark and the grammar load
on the first text the fast parser declines (``fastparse.py``), an invalid one at the latest.
See ``docs/reference/expressions.md``.
"""

from __future__ import annotations

from .compiler import (
    KNOWN_CONTEXTS,
    Call,
    CompiledExpression,
    Reference,
    compile_expression,
    evaluate,
)
from .functions import FUNCTIONS
from .template import CLOSE, OPEN, Template, parse_template, render_template
from .walk import JsonPath, has_templates, map_templates, walk_templates

__all__ = [
    "CLOSE",
    "FUNCTIONS",
    "KNOWN_CONTEXTS",
    "OPEN",
    "Call",
    "CompiledExpression",
    "JsonPath",
    "Reference",
    "Template",
    "compile_expression",
    "evaluate",
    "has_templates",
    "map_templates",
    "parse_template",
    "render_template",
    "walk_templates",
]
