"""``waterflow dev``: everything on one machine, one command, Ctrl-C to stop."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from waterflow_sdk.config_layers import FlagMap, config_option, log_options
from waterflow_sdk.params import Duration

from .hooks_option import hooks_option, hooks_settings
from .server import (
    SHARED_FLAGS,
    access_options,
    access_settings,
    configure_logging,
    limit_settings,
    provider_options,
    provider_settings,
)

if TYPE_CHECKING:
    from waterflow_core.config import Loaded

    from ..config import DevConfig

DEV_FLAGS: FlagMap = {
    **SHARED_FLAGS,
    "data_dir": "dev.data_dir",
    "temporal_port": "dev.temporal_port",
    "ui_port": "dev.ui_port",
    "headless": "dev.headless",
    "retention": ("dev.retention", lambda retention: retention.total_seconds()),
    "no_agent": ("dev.agent", lambda no_agent: not no_agent),
    "agent_name": "dev.agent_name",
    "agent_groups": "dev.agent_groups",
}


def dev_config(ctx: click.Context, environ: Mapping[str, str] | None = None) -> Loaded[DevConfig]:
    """The configuration of a parsed ``waterflow dev`` command line (exits 2 on a mistake)."""
    from waterflow_sdk.config_layers import load

    from ..config import DevConfig

    return load(DevConfig, ctx, DEV_FLAGS, environ)


@click.command("dev")
@config_option
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where Temporal's SQLite file, the agent's workdir and logs live [default .waterflow].",
)
@click.option("--host", help="Interface for the API and Temporal [default 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="API port [default 8080].")
@click.option(
    "--temporal-address",
    help="Use this Temporal instead of starting one [env WATERFLOW_TEMPORAL_ADDRESS].",
)
@click.option("--namespace", help="Temporal namespace [default default; env WATERFLOW_TEMPORAL_NAMESPACE].")
@click.option(
    "--temporal-port",
    type=click.IntRange(1, 65535),
    help="Port of the embedded Temporal (default 7233, or the last one used).",
)
@click.option(
    "--ui-port",
    type=click.IntRange(1, 65535),
    help="Port of the Temporal UI (default 8233, or the last one used).",
)
@click.option("--headless", is_flag=True, help="Do not start the Temporal UI.")
@click.option(
    "--retention",
    type=Duration(minimum=timedelta(hours=1)),
    help="How long finished runs are kept [default 30d].",
)
@click.option("--no-agent", is_flag=True, help="Do not start the local agent.")
@click.option("--agent-name", help="Name of the local agent [default local].")
@click.option(
    "--agent-group",
    "agent_groups",
    multiple=True,
    help="Server group (runs-on) of the local agent; repeatable [default local].",
)
@access_options
@provider_options
@hooks_option
@log_options("warning")
@click.option("-v", "--verbose", is_flag=True, help="Log the server's lifecycle at INFO level (--log-level info).")
@click.pass_context
def dev_command(ctx: click.Context, **_: Any) -> None:
    """Run Waterflow locally: Temporal (SQLite in --data-dir), the API server and one agent.

    Prints the API URL, the Temporal UI URL and a line with `ready` once runs can start. Runs
    survive a restart on the same --data-dir. Ctrl-C or SIGTERM stops everything cleanly.

    Settings come from flags, then WATERFLOW_* variables, then the --config file, then defaults
    (`waterflow config show --dev`).

    On loopback (the default) the API needs no token unless WATERFLOW_API_TOKEN or --token-file
    gives one; any other --host needs --insecure, since the embedded Temporal has no authentication.
    """
    from ..api.security import is_loopback
    from ..dev.stack import DevOptions, missing_dev_extra
    from ..providers_config import event_env_prefixes

    # The event handlers' variables (a webhook's secret, its headers) are kept from the local
    # agent's steps like the agent's own secrets, and not handed to the agent.
    handlers = dev_config(ctx).config.events.handlers
    secrets = _take_secrets(event_env_prefixes(handlers))
    event_env = {name: secrets.pop(name) for name in list(secrets) if name.startswith(event_env_prefixes(handlers))}
    missing = missing_dev_extra()
    if missing:
        raise click.ClickException(
            f"waterflow dev needs {missing}, which comes with the dev extra: pip install 'waterflow-server[dev]'"
        )
    environ = {**os.environ, **secrets, **event_env}
    loaded = dev_config(ctx, environ)
    config = loaded.config
    configure_logging(config.logging)
    # The local agent is a child with this environment: it logs in the same format, and the file
    # named here configures this command, not the agent.
    os.environ["WATERFLOW_LOG_FORMAT"] = config.logging.format
    os.environ.pop("WATERFLOW_CONFIG", None)
    host = config.api.host
    access = access_settings(host, config.access)
    # Before the providers: refused, it leaves nothing behind (not even the event spool).
    temporal_address = config.temporal.address if "temporal.address" in loaded.sources else None
    if not is_loopback(host) and not temporal_address and not config.access.insecure:
        raise click.ClickException(
            f"refusing to run the embedded Temporal on {host}: it has no authentication, so anyone "
            "who can reach it could start workflows on your agents. Keep the default 127.0.0.1, use "
            "--temporal-address with a secured Temporal, or pass --insecure"
        )
    providers = provider_settings(
        loaded,
        ctx.params["event_options"],
        ctx.params["server_groups_options"],
        (config.events.spool or config.dev.data_dir / "events").resolve(),
        environ,
    )
    options = DevOptions(
        data_dir=config.dev.data_dir.resolve(),
        host=host,
        port=config.api.port,
        temporal_address=temporal_address,
        namespace=config.temporal.namespace,
        temporal_port=config.dev.temporal_port,
        ui_port=config.dev.ui_port,
        headless=config.dev.headless,
        retention=timedelta(seconds=config.dev.retention),
        agent=config.dev.agent,
        agent_name=config.dev.agent_name,
        agent_groups=list(config.dev.agent_groups) or ["local"],
        temporal_ui_url=config.console.temporal_ui_url,
        # DevOptions passes this mapping to ServerSettings as is; the limits go along with it.
        access={**access, **limit_settings(config.limits), **hooks_settings(ctx.params["hooks_file"])},
        providers=providers,
        secrets=secrets,
    )
    try:
        code = asyncio.run(_run(options))
    except KeyboardInterrupt:
        code = 130
    # Everything is stopped; skip interpreter finalization, where the Temporal core's threads can
    # abort the process (see `waterflow server`).
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


def _take_secrets(prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """Take the secrets out of this process's environment, as the agent does (ADR 0020).

    Steps of the local agent have this process among their ancestors, and
    ``/proc/<pid>/environ`` shows the environment a process was started with: if it holds
    ``WATERFLOW_SECRET_*``, ``WATERFLOW_TEMPORAL_API_KEY`` or a variable starting with one of
    ``prefixes``, this re-executes ``waterflow dev``
    (same pid and arguments) without them, and the new image gets their values back here. The
    process is then made non-dumpable, so processes of its user cannot read its memory either.
    """
    try:
        from waterflow_agent.isolation import make_undumpable
        from waterflow_agent.sensitive_env import HandoffError, take_sensitive_environment
    except ImportError:  # no agent installed, hence no local agent running steps under us
        return {}
    try:
        secrets = take_sensitive_environment(prefixes)
    except HandoffError as err:
        raise click.ClickException(str(err)) from err
    make_undumpable()
    return secrets


async def _run(options: object) -> int:
    from ..dev.stack import DevError, DevOptions, DevStack
    from ..serving import stop_on_signals

    assert isinstance(options, DevOptions)
    stop = asyncio.Event()
    stack = DevStack(options, say=click.echo)
    code = 0
    with stop_on_signals(stop):
        try:
            starting = asyncio.create_task(stack.start())
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait({starting, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():  # Ctrl-C while starting
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
            else:
                waiter.cancel()
                starting.result()
                for line in stack.banner():
                    click.echo(line)
                await stack.supervise(stop)
        except DevError as exc:
            click.echo(f"error: {exc}", err=True)
            code = 1
        finally:
            click.echo("stopping...")
            await stack.stop()
            click.echo("stopped")
    return code
