"""``waterflow agent``: the command that runs an agent (also ``python -m waterflow_agent``)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from waterflow_core.config import Loaded
from waterflow_core.logformat import configure_logging
from waterflow_core.temporal import TemporalSettings, TemporalSettingsError
from waterflow_sdk.config_layers import FlagMap, config_option, load, log_options
from waterflow_sdk.params import Duration

from .config import AgentConfig, AgentProcessConfig
from .footprint import limit_malloc_arenas, skip_httpx_cli
from .isolation import isolate_imports, make_undumpable
from .params import ByteSize
from .runtime import Agent, AgentError, run_agent
from .sensitive_env import HandoffError, take_sensitive_environment
from .steploop import loop_factory


def _seconds(duration: timedelta) -> float:
    return duration.total_seconds()


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        pairs[key] = value
    return pairs


AGENT_FLAGS: FlagMap = {
    "name": "agent.name",
    "groups": "agent.groups",
    "temporal_address": "temporal.address",
    "namespace": "temporal.namespace",
    "workdir": "agent.workdir",
    "max_concurrent": "agent.max_concurrent",
    "grace": ("agent.grace", _seconds),
    "heartbeat_interval": ("agent.heartbeat_interval", _seconds),
    "reload_watch": "agent.reload_watch",
    "reload_poll_interval": ("agent.reload_poll_interval", _seconds),
    "secret_provider": "secrets.provider",
    "secret_options": ("secrets.options", lambda values: _pairs(values, "--secret-option")),
    "log_handler": "step_logs.handler",
    "log_options": ("step_logs.options", lambda values: _pairs(values, "--log-option")),
    "facts": ("agent.facts", lambda values: _pairs(values, "--fact")),
    "run_as": "agent.run_as",
    "allow_run_as": "agent.allow_run_as",
    "run_secrets_ttl": ("agent.run_secrets_ttl", _seconds),
    "step_log_rate": "agent.step_log_rate",
    "step_log_burst": "agent.step_log_burst",
    "log_level": "logging.level",
    "log_format": "logging.format",
}
"""Flags of ``waterflow agent`` → configuration keys."""


def agent_config(ctx: click.Context, environ: Mapping[str, str] | None = None) -> Loaded[AgentProcessConfig]:
    """The configuration of a parsed ``waterflow agent`` command line (exits 2 on a mistake)."""
    return load(AgentProcessConfig, ctx, AGENT_FLAGS, environ)


@click.command("agent")
@config_option
@click.option("--name", help="Agent name: unique per agent; its personal queue is agent:<name> [default: hostname; "
              "env WATERFLOW_AGENT_NAME].")
@click.option("--group", "groups", multiple=True,
              help="Server group to serve (the task queue a job's runs-on names). Repeatable [env "
                   "WATERFLOW_AGENT_GROUPS, comma-separated].")
@click.option("--temporal-address", help="Temporal frontend host:port [default 127.0.0.1:7233; env "
              "WATERFLOW_TEMPORAL_ADDRESS].")
@click.option("--namespace", help="Temporal namespace [default default; env WATERFLOW_TEMPORAL_NAMESPACE].")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Working directory of steps [default: .waterflow/agent/<name>; env WATERFLOW_AGENT_WORKDIR].")
@click.option("--max-concurrent", type=click.IntRange(min=1),
              help="Steps run at once, per polled queue [default 10; env WATERFLOW_AGENT_MAX_CONCURRENT].")
@click.option("--grace", type=Duration(),
              help="On SIGTERM, how long running steps may finish before they are cancelled [default 30s].")
@click.option("--heartbeat-interval", type=Duration(), help="How often the agent refreshes its registration "
              "[default 10s].")
@click.option("--reload-watch/--no-reload-watch", default=None,
              help="Hot reload when files change in the plugin directories (inotify); --no-reload-watch "
                   "polls only [default: watch].")
@click.option("--reload-poll-interval", type=Duration(),
              help="How often installed node packages are re-read regardless (hot reload safety net) [default 30s].")
@click.option("--secret-provider", help="SecretProvider that resolves secrets.NAME [default env; env "
              "WATERFLOW_SECRET_PROVIDER].")
@click.option("--secret-option", "secret_options", multiple=True, metavar="KEY=VALUE",
              help="Option of the secret provider. Repeatable.")
@click.option("--log-handler", help="LogHandler receiving every step log line; 'none' to disable [default jsonl; env "
              "WATERFLOW_LOG_HANDLER].")
@click.option("--log-option", "log_options", multiple=True, metavar="KEY=VALUE",
              help="Option of the log handler. Repeatable.")
@click.option("--fact", "facts", multiple=True, metavar="KEY=VALUE",
              help="Extra host fact to publish (server.facts.KEY). Repeatable.")
@click.option("--run-as", metavar="USER",
              help="Start the processes of steps as this user (name or uid); the agent must run as root "
                   "[env WATERFLOW_AGENT_RUN_AS].")
@click.option("--allow-run-as", "allow_run_as", multiple=True, metavar="USER",
              help="Let steps that set run-as: USER run their processes as USER (name); the agent must run "
                   "as root. Repeatable [default: none].")
@click.option("--run-secrets-ttl", type=Duration(),
              help="How long after a run's last step here its secrets stay masked in its later steps [default 24h].")
@click.option("--step-log-rate", type=ByteSize(),
              help="Bytes a second each step may log; lines beyond are dropped and counted. 0: no limit "
                   "[default 1MiB].")
@click.option("--step-log-burst", type=ByteSize(),
              help="Bytes a step may log at once before --step-log-rate applies [default 8MiB].")
@log_options("info")
@click.pass_context
def agent_command(ctx: click.Context, **_: Any) -> None:
    """Run an agent: execute the steps routed to its server groups on this machine.

    Settings come from flags, then WATERFLOW_* variables, then the --config file, then defaults
    (`waterflow config show --agent`). TLS and API key of Temporal: [temporal] in the file or
    WATERFLOW_TEMPORAL_TLS / _TLS_CERT / _TLS_KEY / _TLS_CA / _API_KEY. The agent prints a line
    containing "ready" once it is polling.
    """
    skip_httpx_cli()
    limit_malloc_arenas()
    first = agent_config(ctx).config
    configure_logging(first.logging.level, first.logging.format)
    options = first.secrets.options
    prefix = options.get("prefix") if first.secrets.provider == "env" else None
    try:
        # Re-executes the agent if secrets are in its environment: before anything else runs.
        taken = take_sensitive_environment([prefix] if prefix else [])
    except HandoffError as err:
        raise click.ClickException(str(err)) from err
    # Read again: the variables just taken (Temporal's API key) are no longer in os.environ.
    settings = agent_config(ctx, {**os.environ, **taken}).config
    temporal: TemporalSettings = settings.temporal
    try:
        temporal.tls_config()  # a TLS settings mistake stops the agent now, not retried forever
    except TemporalSettingsError as err:
        raise click.ClickException(str(err)) from None
    section = settings.agent
    name = section.name or ""  # set: the model defaults it to the host name
    handler = settings.step_logs.handler
    try:
        config = AgentConfig(
            name=name,
            groups=list(section.groups),
            temporal=temporal,
            workdir=section.workdir or Path(".waterflow") / "agent" / name,
            max_concurrent=section.max_concurrent,
            grace=timedelta(seconds=section.grace),
            heartbeat_interval=timedelta(seconds=section.heartbeat_interval),
            reload_watch=section.reload_watch,
            reload_poll_interval=timedelta(seconds=section.reload_poll_interval),
            secret_provider=settings.secrets.provider,
            log_handler=None if handler.lower() == "none" else handler,
            facts=dict(section.facts),
            run_as=section.run_as,
            allow_run_as=list(section.allow_run_as),
            run_secrets_ttl=timedelta(seconds=section.run_secrets_ttl),
            step_log_rate=section.step_log_rate,
            step_log_burst=section.step_log_burst,
        )
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    isolate_imports(config.workdir)
    make_undumpable()

    def ready() -> None:
        click.echo(f"waterflow agent {config.name} ready: polling {', '.join(config.queues)}")

    try:
        agent = Agent(
            config,
            secret_options=dict(options),
            log_options=dict(settings.step_logs.options),
            taken_env=taken,
        )
        with asyncio.Runner(loop_factory=loop_factory(agent.step_user)) as runner:
            runner.run(run_agent(agent, on_ready=ready))
    except AgentError as err:
        raise click.ClickException(str(err)) from err
    if agent.forced:
        sys.exit(1)  # second signal: running steps were cancelled, not finished


def main() -> None:
    """Entry point of ``python -m waterflow_agent``."""
    agent_command(prog_name="python -m waterflow_agent")
