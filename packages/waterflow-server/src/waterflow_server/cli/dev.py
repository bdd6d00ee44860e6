"""``waterflow dev``: everything on one machine, one command, Ctrl-C to stop."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

import click

from waterflow_sdk.params import Duration

from ..defaults import DEFAULT_HOST, DEFAULT_NAMESPACE, DEFAULT_PORT
from .server import access_options, access_settings, provider_options, provider_settings


@click.command("dev")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".waterflow"),
    show_default=True,
    help="Where Temporal's SQLite file, the agent's workdir and logs live.",
)
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface for the API and Temporal.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535), help="API port.")
@click.option(
    "--temporal-address",
    envvar="WATERFLOW_TEMPORAL_ADDRESS",
    default=None,
    help="Use this Temporal instead of starting one [env WATERFLOW_TEMPORAL_ADDRESS].",
)
@click.option("--namespace", envvar="WATERFLOW_TEMPORAL_NAMESPACE", default=DEFAULT_NAMESPACE, show_default=True)
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
    default="30d",
    show_default=True,
    help="How long finished runs are kept.",
)
@click.option("--no-agent", is_flag=True, help="Do not start the local agent.")
@click.option("--agent-name", default="local", show_default=True, help="Name of the local agent.")
@click.option(
    "--agent-group",
    "agent_groups",
    multiple=True,
    default=("local",),
    show_default=True,
    help="Server group (runs-on) of the local agent; repeatable.",
)
@access_options
@provider_options
@click.option("-v", "--verbose", is_flag=True, help="Log the server's lifecycle at INFO level.")
def dev_command(
    data_dir: Path,
    host: str,
    port: int,
    temporal_address: str | None,
    namespace: str,
    temporal_port: int | None,
    ui_port: int | None,
    headless: bool,
    retention: timedelta,
    no_agent: bool,
    agent_name: str,
    agent_groups: tuple[str, ...],
    token_file: Path | None,
    allowed_hosts: tuple[str, ...],
    allowed_origins: tuple[str, ...],
    insecure: bool,
    event_handlers: tuple[str, ...],
    event_options: tuple[str, ...],
    event_spool: Path | None,
    server_groups: str | None,
    inventory: str | None,
    server_groups_options: tuple[str, ...],
    verbose: bool,
) -> None:
    """Run Waterflow locally: Temporal (SQLite in --data-dir), the API server and one agent.

    Prints the API URL, the Temporal UI URL and a line with `ready` once runs can start. Runs
    survive a restart on the same --data-dir. Ctrl-C or SIGTERM stops everything cleanly.

    On loopback (the default) the API needs no token unless WATERFLOW_API_TOKEN or --token-file
    gives one; any other --host needs --insecure, since the embedded Temporal has no authentication.
    """
    from ..api.security import is_loopback
    from ..dev.stack import DevOptions, missing_dev_extra
    from ..providers_config import DEFAULT_EVENT_HANDLERS, event_env_prefixes
    from .server import configure_logging

    # The event handlers' variables (a webhook's secret, its headers) are kept from the local
    # agent's steps like the agent's own secrets, and not handed to the agent.
    event_prefixes = event_env_prefixes(event_handlers or DEFAULT_EVENT_HANDLERS)
    secrets = _take_secrets(event_prefixes)
    event_env = {name: secrets.pop(name) for name in list(secrets) if name.startswith(event_prefixes)}
    missing = missing_dev_extra()
    if missing:
        raise click.ClickException(
            f"waterflow dev needs {missing}, which comes with the dev extra: pip install 'waterflow-server[dev]'"
        )
    configure_logging(verbose)
    access = access_settings(host, token_file, allowed_hosts, allowed_origins, insecure)
    providers = provider_settings(
        event_handlers,
        event_options,
        server_groups,
        server_groups_options,
        inventory,
        (event_spool or data_dir / "events").resolve(),
        {**os.environ, **event_env},
    )
    if not is_loopback(host) and not temporal_address and not insecure:
        raise click.ClickException(
            f"refusing to run the embedded Temporal on {host}: it has no authentication, so anyone "
            "who can reach it could start workflows on your agents. Keep the default 127.0.0.1, use "
            "--temporal-address with a secured Temporal, or pass --insecure"
        )
    options = DevOptions(
        data_dir=data_dir.resolve(),
        host=host,
        port=port,
        temporal_address=temporal_address or None,
        namespace=namespace,
        temporal_port=temporal_port,
        ui_port=ui_port,
        headless=headless,
        retention=retention,
        agent=not no_agent,
        agent_name=agent_name,
        agent_groups=list(agent_groups) or ["local"],
        access=access,
        providers=providers,
        secrets=secrets,
    )
    try:
        code = asyncio.run(_run(options))
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


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
