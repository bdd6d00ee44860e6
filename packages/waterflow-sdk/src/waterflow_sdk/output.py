"""How the CLI prints: ``--output text|table|json|yaml``, escape-free text, aligned tables.

``json`` and ``yaml`` print exactly what the API returned (the same fields, the values
untouched: YAML escapes control characters itself). ``text`` and ``table`` are for a person:
every line goes through :func:`say`, which shows control characters as ``\\xNN``, so output
that a step or an agent produced cannot drive the user's terminal (clear it, set its title,
write its clipboard with OSC 52).
"""

from __future__ import annotations

import json
from typing import Any

import click

OUTPUTS = ("text", "table", "json", "yaml")
"""The ``--output`` choices; ``table`` is ``text`` except that listings get a header and columns."""

STRUCTURED = frozenset({"json", "yaml"})


def say(text: str = "", *, err: bool = False) -> None:
    """Print ``text`` for a person: line by line, control characters (but tab) shown as ``\\xNN``."""
    from .live_model import printable  # the same rule as the live view; imported late: it needs pydantic

    click.echo("\n".join(printable(line) for line in text.split("\n")), err=err)


def document(value: Any, output: str) -> str:
    """``value`` (JSON-compatible) as the ``json`` or ``yaml`` document it prints as."""
    if output == "yaml":
        import yaml

        return str(yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=1_000_000)).rstrip("\n")
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def emit(value: Any, output: str) -> None:
    """Print a JSON-compatible value as ``output`` (``json`` or ``yaml``), untouched."""
    click.echo(document(value, output))


def emit_stream_item(value: Any, output: str) -> None:
    """One item of a stream (``logs``): a JSON line, or a YAML document after ``---``."""
    if output == "yaml":
        click.echo("---\n" + document(value, "yaml"))
    else:
        click.echo(json.dumps(value, ensure_ascii=False, default=str))
