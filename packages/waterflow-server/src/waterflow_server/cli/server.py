"""``waterflow server``: the REST API plus the interpreter worker, against any Temporal."""

from __future__ import annotations

import asyncio
import logging
import sys

import click

from ..defaults import (
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_NAMESPACE,
    DEFAULT_PORT,
    DEFAULT_TEMPORAL_ADDRESS,
)


def temporal_options(func: click.decorators.FC) -> click.decorators.FC:
    """``--temporal-address`` and ``--namespace`` (defaults from ``WATERFLOW_TEMPORAL_*``)."""
    func = click.option(
        "--namespace",
        envvar="WATERFLOW_TEMPORAL_NAMESPACE",
        default=DEFAULT_NAMESPACE,
        show_default=True,
        help="Temporal namespace [env WATERFLOW_TEMPORAL_NAMESPACE].",
    )(func)
    return click.option(
        "--temporal-address",
        envvar="WATERFLOW_TEMPORAL_ADDRESS",
        default=DEFAULT_TEMPORAL_ADDRESS,
        show_default=True,
        help="Temporal frontend host:port [env WATERFLOW_TEMPORAL_ADDRESS]. TLS and API keys: "
        "WATERFLOW_TEMPORAL_TLS*, WATERFLOW_TEMPORAL_API_KEY.",
    )(func)


def configure_logging(verbose: bool) -> None:
    """Plain one-line logs on stderr."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbose:
        logging.getLogger("waterflow_server").setLevel(logging.INFO)


@click.command("server")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@temporal_options
@click.option(
    "--max-body-bytes",
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest request body accepted; bigger ones get 413.",
)
@click.option(
    "--no-worker", is_flag=True, help="Serve the API only; another server hosts the interpreter worker."
)
@click.option("-v", "--verbose", is_flag=True, help="Log requests and lifecycle at INFO level.")
def server_command(
    host: str,
    port: int,
    temporal_address: str,
    namespace: str,
    max_body_bytes: int,
    no_worker: bool,
    verbose: bool,
) -> None:
    """Run the Waterflow API server (stateless: every run lives in Temporal).

    It also hosts the interpreter workflow worker, so at least one server must run for runs to
    advance. Stop it with Ctrl-C or SIGTERM.
    """
    configure_logging(verbose)
    from waterflow_core.temporal import TemporalSettings

    from ..settings import ServerSettings

    temporal = TemporalSettings.from_env().model_copy(
        update={"address": temporal_address, "namespace": namespace}
    )
    settings = ServerSettings(
        temporal=temporal, host=host, port=port, max_body_bytes=max_body_bytes, run_worker=not no_worker
    )
    try:
        asyncio.run(run_server(settings))
    except KeyboardInterrupt:
        pass
    except ServerFailure as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


class ServerFailure(Exception):
    """A start-up failure to report in one line."""


async def run_server(settings: object) -> None:
    """Connect to Temporal, serve until SIGINT/SIGTERM, then stop cleanly."""
    from ..api.app import TemporalConnectError, start_api
    from ..serving import ServerStartError, stop_http, stop_on_signals
    from ..settings import ServerSettings

    assert isinstance(settings, ServerSettings)
    stop = asyncio.Event()
    with stop_on_signals(stop):
        try:
            server, task = await start_api(settings)
        except (TemporalConnectError, ServerStartError) as exc:
            raise ServerFailure(str(exc)) from None
        port = server.servers[0].sockets[0].getsockname()[1] if server.servers else settings.port
        click.echo(
            f"Waterflow API listening on http://{settings.host}:{port} (Temporal {settings.temporal.address})"
        )
        click.echo(f"API docs: http://{settings.host}:{port}/docs")
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        click.echo("stopping...")
        await stop_http(server, task)
