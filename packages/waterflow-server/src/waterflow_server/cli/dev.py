"""``waterflow dev``: everything on one machine, one command, Ctrl-C to stop."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

import click

from waterflow_sdk.params import Duration

from ..defaults import DEFAULT_HOST, DEFAULT_NAMESPACE, DEFAULT_PORT


@click.command("dev")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".waterflow"),
    show_default=True,
    help="Where Temporal's SQLite file, the agent's workdir and logs live.",
)
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface for the API and Temporal.")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535), help="API port."
)
@click.option(
    "--temporal-address",
    envvar="WATERFLOW_TEMPORAL_ADDRESS",
    default=None,
    help="Use this Temporal instead of starting one [env WATERFLOW_TEMPORAL_ADDRESS].",
)
@click.option(
    "--namespace", envvar="WATERFLOW_TEMPORAL_NAMESPACE", default=DEFAULT_NAMESPACE, show_default=True
)
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
    verbose: bool,
) -> None:
    """Run Waterflow locally: Temporal (SQLite in --data-dir), the API server and one agent.

    Prints the API URL, the Temporal UI URL and a line with `ready` once runs can start. Runs
    survive a restart on the same --data-dir. Ctrl-C or SIGTERM stops everything cleanly.
    """
    from ..dev.stack import DevOptions, missing_dev_extra
    from .server import configure_logging

    missing = missing_dev_extra()
    if missing:
        raise click.ClickException(
            f"waterflow dev needs {missing}, which comes with the dev extra: pip install 'waterflow-server[dev]'"
        )
    configure_logging(verbose)
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
    )
    try:
        code = asyncio.run(_run(options))
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


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
