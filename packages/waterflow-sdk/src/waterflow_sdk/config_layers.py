"""From a parsed command line to a layered configuration: ``--config``, flags given, the environment.

Flags carry no defaults of their own (the model has them), so a flag counts only when it is on
the command line; click tells which were (``ParameterSource.COMMANDLINE``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

if TYPE_CHECKING:  # imported when used: the client commands load this module at start
    from pydantic import BaseModel

    from waterflow_core.config import Loaded

M = TypeVar("M", bound="BaseModel")

CONFIG_ENV = "WATERFLOW_CONFIG"
EXIT_CONFIG = 2


class ConfigFailure(click.ClickException):
    """A configuration mistake: one line, exit status 2 (as click's usage errors)."""

    exit_code = EXIT_CONFIG


FlagMap = Mapping[str, str | tuple[str, Callable[[Any], Any]]]
"""click parameter name → model key, or (key, conversion of the flag's value)."""


def config_option(func: click.decorators.FC) -> click.decorators.FC:
    """``--config FILE`` (or ``WATERFLOW_CONFIG``)."""
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"TOML configuration file; flags and WATERFLOW_* variables override it [env {CONFIG_ENV}].",
    )(func)


def log_options(default_level: str) -> Callable[[click.decorators.FC], click.decorators.FC]:
    """``--log-level`` and ``--log-format``."""

    def decorate(func: click.decorators.FC) -> click.decorators.FC:
        func = click.option(
            "--log-format",
            type=click.Choice(["text", "json"]),
            help="'text' lines or 'json' (one object per line) on stderr [default text; env WATERFLOW_LOG_FORMAT].",
        )(func)
        return click.option(
            "--log-level",
            type=click.Choice(["debug", "info", "warning", "error"]),
            help=f"Least severe level logged [default {default_level}; env WATERFLOW_LOG_LEVEL].",
        )(func)

    return decorate


def option_pairs(values: tuple[str, ...], nested: bool = False) -> dict[str, Any]:
    """``KEY=VALUE`` flags as a table (``HANDLER.KEY=VALUE`` nested), skipping malformed ones.

    Only for showing where values came from: the provider checks the flags themselves and names
    a malformed one.
    """
    table: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            continue
        if nested:
            name, dot, option = key.strip().partition(".")
            if dot and option:
                table.setdefault(name, {})[option] = value
        else:
            table[key.strip()] = value
    return table


def given_flags(ctx: click.Context, flag_map: FlagMap) -> dict[str, tuple[str, Any]]:
    """The flags on the command line, as ``key → (flag, value)`` for :func:`load_config`."""
    flags: dict[str, tuple[str, Any]] = {}
    params = {param.name: param for param in ctx.command.params}
    for name, target in flag_map.items():
        if name not in ctx.params or ctx.get_parameter_source(name) is not ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[name]
        key, convert = (target, None) if isinstance(target, str) else target
        if convert is not None:
            value = convert(value)
        elif isinstance(value, tuple):
            value = list(value)
        opts = params[name].opts
        flag = max(opts, key=len)
        if key in flags:  # -v and --log-level both set the level: the explicit one wins
            continue
        flags[key] = (flag, value)
    return flags


def config_file(ctx: click.Context, environ: Mapping[str, str]) -> Path | None:
    """The file of ``--config``, else of ``WATERFLOW_CONFIG``, else none."""
    given = ctx.params.get("config_file")
    if given is not None:
        return Path(given)
    named = environ.get(CONFIG_ENV, "").strip()
    return Path(named) if named else None


def load(model: type[M], ctx: click.Context, flag_map: FlagMap, environ: Mapping[str, str] | None = None) -> Loaded[M]:
    """The configuration of the command ``ctx`` parsed; :class:`ConfigFailure` naming any mistake."""
    from waterflow_core.config import ConfigError, load_config

    environ = os.environ if environ is None else environ
    try:
        return load_config(model, file=config_file(ctx, environ), environ=environ, flags=given_flags(ctx, flag_map))
    except ConfigError as exc:
        raise ConfigFailure(str(exc)) from None


def file_entries(loaded: Loaded[Any], key: str) -> dict[str, Any]:
    """The entries of the option table ``key`` that the file (not a flag) set."""
    table: Any = loaded.config
    for part in key.split("."):
        table = getattr(table, part)
    prefix = f"{key}."
    from_file = {
        k[len(prefix) :] for k, source in loaded.sources.items() if k.startswith(prefix) and source.startswith("file ")
    }
    kept: dict[str, Any] = {}
    for name, value in table.items():
        if isinstance(value, Mapping):
            entries = {sub: v for sub, v in value.items() if f"{name}.{sub}" in from_file}
            if entries:
                kept[name] = entries
        elif name in from_file:
            kept[name] = value
    return kept
