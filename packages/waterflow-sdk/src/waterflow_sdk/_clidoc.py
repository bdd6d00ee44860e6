"""The reference of every ``waterflow`` command, generated from the click command tree.

``python -m waterflow_sdk._clidoc > docs/reference/cli/commands.md`` writes it (plugin commands
included: ``server``, ``agent``, ``dev``... as installed); ``--check FILE`` exits 1 when FILE is
not what it would write, so a test keeps the page in step with the code.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from .cli import cli

_UNSET = getattr(click.core, "UNSET", None)
"""click 8.3's marker of a parameter without a default (older clicks use ``None``)."""

GENERATOR = "python -m waterflow_sdk._clidoc > docs/reference/cli/commands.md"

HEADER = f"""# Command reference

<!-- Generated from the code by `{GENERATOR}`: do not edit by hand (a test compares them). -->

Every `waterflow` command with its arguments and options, as `waterflow COMMAND --help` shows
them. How the commands are used together, the output formats and the exit statuses are on the
hand-written pages: [client commands](client.md), [`waterflow server`](server.md),
[`waterflow agent`](agent.md), [`waterflow dev`](dev.md).
"""


def _commands(group: click.Group, ctx: click.Context, prefix: str) -> Iterator[tuple[str, click.Command]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from _commands(command, ctx, path)


def _cell(text: str) -> str:
    """Text for one markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _help(text: str) -> list[str]:
    """A docstring as markdown: paragraphs as they are, click's ``\\b`` blocks fenced verbatim."""
    lines: list[str] = []
    for paragraph in text.strip().split("\n\n"):
        if paragraph.lstrip().startswith("\b"):
            body = textwrap.dedent(paragraph.lstrip()[1:].strip("\n"))
            lines += ["```text", *body.splitlines(), "```", ""]
        else:
            lines += [" ".join(paragraph.split()), ""]
    return lines


def _default(param: click.Parameter, ctx: click.Context) -> str:
    if isinstance(param, click.Option) and isinstance(param.show_default, str):
        return param.show_default  # the option says in words where its default comes from
    value: Any = param.get_default(ctx, call=False)
    if callable(value):
        return "computed when run"
    unset = value is None or value is _UNSET or value in ((), [])
    if unset or (isinstance(param, click.Option) and param.is_flag and not value):
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(f"`{item}`" for item in value)
    return f"`{value}`"


def _type(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    if isinstance(param.type, click.Choice):
        return " \\| ".join(f"`{choice}`" for choice in param.type.choices)
    return param.type.name


def _envvar(param: click.Parameter) -> str:
    names = param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar] if param.envvar else []
    return ", ".join(f"`{name}`" for name in names)


def _option_row(param: click.Option, ctx: click.Context) -> str:
    names = ", ".join(f"`{name}`" for name in [*param.opts, *param.secondary_opts])
    more = " (repeatable)" if param.multiple else ""
    cells = [names, _type(param) + more, _default(param, ctx), _envvar(param), _cell(param.help or "")]
    return "| " + " | ".join(cells) + " |"


def command_section(path: str, command: click.Command, ctx: click.Context) -> list[str]:
    """One command: usage, help, arguments, options."""
    sub = click.Context(command, info_name=path, parent=None)
    usage = " ".join([path, *command.collect_usage_pieces(sub)])
    lines = [f"## `{path}`", "", "```text", usage, "```", ""]
    lines += _help(command.help or command.short_help or "")
    arguments = [param for param in command.params if isinstance(param, click.Argument)]
    if arguments:
        lines += ["| argument | type | required |", "|---|---|---|"]
        lines += [
            f"| `{param.human_readable_name}` | {_type(param)}{' (repeatable)' if param.nargs == -1 else ''} | "
            f"{'yes' if param.required else 'no'} |"
            for param in arguments
        ]
        lines.append("")
    options = [param for param in command.params if isinstance(param, click.Option) and not param.hidden]
    if options:
        lines += ["| option | type | default | environment | description |", "|---|---|---|---|---|"]
        lines += [_option_row(param, sub) for param in options]
        lines.append("")
    return lines


def render(root: click.Group = cli, name: str = "waterflow") -> str:
    """The whole page."""
    ctx = click.Context(root, info_name=name)
    lines = [HEADER]
    lines += command_section(name, root, ctx)
    for path, command in _commands(root, ctx, name):
        lines += command_section(path, command, ctx)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the page, or with ``--check FILE`` compare FILE with it (1 when it is stale)."""
    args = list(sys.argv[1:] if argv is None else argv)
    page = render()
    if args[:1] == ["--check"] and len(args) == 2:
        if Path(args[1]).read_text(encoding="utf-8") == page:
            return 0
        print(f"{args[1]} is stale: regenerate it with `{GENERATOR}`", file=sys.stderr)
        return 1
    if args:
        print("usage: python -m waterflow_sdk._clidoc [--check FILE]", file=sys.stderr)
        return 2
    sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
