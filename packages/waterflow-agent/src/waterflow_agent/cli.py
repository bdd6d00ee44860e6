"""``waterflow agent``: the command that runs an agent (also ``python -m waterflow_agent``)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from datetime import timedelta
from pathlib import Path

import click

from waterflow_core.temporal import TemporalSettings, TemporalSettingsError
from waterflow_sdk.params import Duration

from .config import AgentConfig
from .isolation import isolate_imports, make_undumpable
from .params import ByteSize
from .runtime import Agent, AgentError, run_agent
from .sensitive_env import HandoffError, take_sensitive_environment
from .steplog import DEFAULT_BURST, DEFAULT_RATE
from .steploop import loop_factory


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        pairs[key] = value
    return pairs


@click.command("agent")
@click.option("--name", envvar="WATERFLOW_AGENT_NAME", default=socket.gethostname, show_default="hostname",
              help="Agent name: unique per agent; its personal queue is agent:<name>.")
@click.option("--group", "groups", multiple=True, envvar="WATERFLOW_AGENT_GROUPS",
              help="Server group to serve (the task queue a job's runs-on names). Repeatable.")
@click.option("--temporal-address", envvar="WATERFLOW_TEMPORAL_ADDRESS", default="127.0.0.1:7233",
              show_default=True, help="Temporal frontend host:port.")
@click.option("--namespace", envvar="WATERFLOW_TEMPORAL_NAMESPACE", default="default", show_default=True,
              help="Temporal namespace.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), envvar="WATERFLOW_AGENT_WORKDIR",
              default=None, help="Working directory of steps [default: .waterflow/agent/<name>].")
@click.option("--max-concurrent", type=click.IntRange(min=1), default=10, show_default=True,
              envvar="WATERFLOW_AGENT_MAX_CONCURRENT", help="Steps run at once, per polled queue.")
@click.option("--grace", type=Duration(), default="30s", show_default=True,
              help="On SIGTERM, how long running steps may finish before they are cancelled.")
@click.option("--heartbeat-interval", type=Duration(), default="10s", show_default=True,
              help="How often the agent refreshes its registration.")
@click.option("--reload-watch/--no-reload-watch", default=True, show_default=True,
              help="Hot reload when files change in the plugin directories (inotify); --no-reload-watch "
                   "polls only.")
@click.option("--reload-poll-interval", type=Duration(), default="30s", show_default=True,
              help="How often installed node packages are re-read regardless (hot reload safety net).")
@click.option("--secret-provider", default="env", show_default=True, envvar="WATERFLOW_SECRET_PROVIDER",
              help="SecretProvider that resolves secrets.NAME.")
@click.option("--secret-option", "secret_options", multiple=True, metavar="KEY=VALUE",
              help="Option of the secret provider. Repeatable.")
@click.option("--log-handler", default="jsonl", show_default=True, envvar="WATERFLOW_LOG_HANDLER",
              help="LogHandler receiving every step log line; 'none' to disable.")
@click.option("--log-option", "log_options", multiple=True, metavar="KEY=VALUE",
              help="Option of the log handler. Repeatable.")
@click.option("--fact", "facts", multiple=True, metavar="KEY=VALUE",
              help="Extra host fact to publish (server.facts.KEY). Repeatable.")
@click.option("--run-as", metavar="USER", envvar="WATERFLOW_AGENT_RUN_AS", default=None,
              help="Start the processes of steps as this user (name or uid); the agent must run as root.")
@click.option("--run-secrets-ttl", type=Duration(), default="24h", show_default=True,
              help="How long after a run's last step here its secrets stay masked in its later steps.")
@click.option("--step-log-rate", type=ByteSize(), default=DEFAULT_RATE, show_default="1MiB",
              help="Bytes a second each step may log; lines beyond are dropped and counted. 0: no limit.")
@click.option("--step-log-burst", type=ByteSize(), default=DEFAULT_BURST, show_default="8MiB",
              help="Bytes a step may log at once before --step-log-rate applies.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True, help="Verbosity of the agent's own log (stderr).")
def agent_command(
    name: str,
    groups: tuple[str, ...],
    temporal_address: str,
    namespace: str,
    workdir: Path | None,
    max_concurrent: int,
    grace: timedelta,
    heartbeat_interval: timedelta,
    reload_watch: bool,
    reload_poll_interval: timedelta,
    secret_provider: str,
    secret_options: tuple[str, ...],
    log_handler: str,
    log_options: tuple[str, ...],
    facts: tuple[str, ...],
    run_as: str | None,
    run_secrets_ttl: timedelta,
    step_log_rate: int,
    step_log_burst: int,
    log_level: str,
) -> None:
    """Run an agent: execute the steps routed to its server groups on this machine.

    TLS and API key come from WATERFLOW_TEMPORAL_TLS / _TLS_CERT / _TLS_KEY / _TLS_CA /
    _API_KEY. The agent prints a line containing "ready" once it is polling.
    """
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    provider_options = _pairs(secret_options, "--secret-option")
    prefix = provider_options.get("prefix") if secret_provider == "env" else None  # noqa: S105
    try:
        # Re-executes the agent if secrets are in its environment: before anything else runs.
        taken = take_sensitive_environment([prefix] if prefix else [])
    except HandoffError as err:
        raise click.ClickException(str(err)) from err
    temporal = TemporalSettings.from_env({**os.environ, **taken}).model_copy(
        update={"address": temporal_address, "namespace": namespace}
    )
    try:
        temporal.tls_config()  # a TLS settings mistake stops the agent now, not retried forever
    except TemporalSettingsError as err:
        raise click.ClickException(str(err)) from None
    try:
        config = AgentConfig(
            name=name,
            groups=list(groups),
            temporal=temporal,
            workdir=workdir or Path(".waterflow") / "agent" / name,
            max_concurrent=max_concurrent,
            grace=grace,
            heartbeat_interval=heartbeat_interval,
            reload_watch=reload_watch,
            reload_poll_interval=reload_poll_interval,
            secret_provider=secret_provider,
            log_handler=None if log_handler.lower() == "none" else log_handler,
            facts=_pairs(facts, "--fact"),
            run_as=run_as,
            run_secrets_ttl=run_secrets_ttl,
            step_log_rate=step_log_rate,
            step_log_burst=step_log_burst,
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
            secret_options=provider_options,
            log_options=_pairs(log_options, "--log-option"),
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
