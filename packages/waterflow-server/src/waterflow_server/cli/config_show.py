"""``waterflow config show``: the effective configuration of a server, dev stack or agent, and its sources."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from waterflow_core.config import Loaded
from waterflow_sdk.config_layers import ConfigFailure


def _resolver(kind: str) -> tuple[click.Command, Callable[[click.Context], Loaded[Any]]]:
    if kind == "agent":
        try:
            from waterflow_agent.cli import agent_command, agent_config
        except ImportError:
            raise ConfigFailure("waterflow-agent is not installed here") from None
        return agent_command, agent_config
    if kind == "dev":
        from .dev import dev_command, dev_config

        return dev_command, dev_config
    from .server import server_command, server_config

    return server_command, server_config


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "[]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@click.group("config")
def config_command() -> None:
    """Inspect the configuration of `waterflow server`, `dev` and `agent`."""


@config_command.command("show", context_settings={"ignore_unknown_options": True})
@click.option(
    "--server", "kind", flag_value="server", default=True, help="The configuration of `waterflow server` (default)."
)
@click.option("--dev", "kind", flag_value="dev", help="The configuration of `waterflow dev`.")
@click.option("--agent", "kind", flag_value="agent", help="The configuration of `waterflow agent`.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML configuration file [env WATERFLOW_CONFIG].",
)
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True)
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[FLAGS OF THE COMMAND]...")
def show_command(kind: str, config_file: Path | None, output: str, args: tuple[str, ...]) -> None:
    """Print the effective configuration: every setting, its value and where it came from.

    Sources: default, file, env (a WATERFLOW_* variable) or flag. Secrets print as <set>. Flags
    of the command itself may follow, to see their effect: `waterflow config show --server --
    --port 9000`. Exits 2 if the configuration is invalid, naming the key, variable or flag.
    """
    command, resolve = _resolver(kind)
    argv = [*args, *(["--config", str(config_file)] if config_file is not None else [])]
    with command.make_context(f"waterflow {command.name}", argv) as ctx:
        loaded = resolve(ctx)
    rows = [{"key": key, "value": value, "source": source} for key, value, source in loaded.rows()]
    document = {"kind": kind, "file": str(loaded.file) if loaded.file else None, "settings": rows}
    if output == "json":
        click.echo(json.dumps(document, indent=2, default=str))
        return
    if output == "yaml":
        import yaml

        click.echo(yaml.safe_dump(json.loads(json.dumps(document, default=str)), sort_keys=False), nl=False)
        return
    width = max(len(row["key"]) for row in rows)
    value_width = min(40, max(len(_text(row["value"])) for row in rows))
    click.echo(f"# waterflow {command.name}; file: {document['file'] or 'none'}")
    click.echo(f"{'KEY':<{width}}  {'VALUE':<{value_width}}  SOURCE")
    for row in rows:
        click.echo(f"{row['key']:<{width}}  {_text(row['value']):<{value_width}}  {row['source']}")
