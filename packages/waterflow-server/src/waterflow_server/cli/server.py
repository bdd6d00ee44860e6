"""``waterflow server``: the REST API plus the interpreter worker, against any Temporal."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


def _split_list(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """Repeated options, each of which may also hold a comma-separated list (as the env var does)."""
    return tuple(item for entry in value for item in entry.replace(",", " ").split())


def access_options(func: click.decorators.FC) -> click.decorators.FC:
    """Authentication and cross-site protection: ``--token-file``, ``--allowed-host``, ... ."""
    func = click.option(
        "--insecure",
        is_flag=True,
        help="Serve on a non-loopback address without authentication (only behind a firewall or "
        "an authenticating proxy).",
    )(func)
    func = click.option(
        "--allowed-origin",
        "allowed_origins",
        multiple=True,
        envvar="WATERFLOW_ALLOWED_ORIGINS",
        callback=_split_list,
        help="Web origin (https://ui.example) allowed to call the API besides the server itself; "
        "repeatable [env WATERFLOW_ALLOWED_ORIGINS, comma-separated].",
    )(func)
    func = click.option(
        "--allowed-host",
        "allowed_hosts",
        multiple=True,
        envvar="WATERFLOW_ALLOWED_HOSTS",
        callback=_split_list,
        help="Host name the API answers to besides loopback names, IP literals and --host; "
        "repeatable, '*' for any [env WATERFLOW_ALLOWED_HOSTS, comma-separated].",
    )(func)
    return click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="WATERFLOW_API_TOKEN_FILE",
        help="File of API tokens, one '<name> <read|operator> <token>' per line (mode 600) "
        "[env WATERFLOW_API_TOKEN_FILE]. WATERFLOW_API_TOKEN adds one operator token.",
    )(func)


def access_settings(
    host: str,
    token_file: Path | None,
    allowed_hosts: tuple[str, ...],
    allowed_origins: tuple[str, ...],
    insecure: bool,
) -> dict[str, Any]:
    """Load the tokens and check the exposure; the ``ServerSettings`` fields they fill.

    Raises :class:`click.ClickException` for a bad token configuration or an unauthenticated
    non-loopback address without ``--insecure``; prints the loud warning when ``--insecure`` is used.
    """
    from ..api.auth import TokenConfigError, load_tokens
    from ..api.security import exposure_problem, insecure_warning, is_loopback

    try:
        tokens = load_tokens(token_file=token_file)
    except TokenConfigError as exc:
        raise click.ClickException(str(exc)) from None
    problem = exposure_problem(host, bool(tokens), insecure)
    if problem:
        raise click.ClickException(problem)
    if not tokens and not is_loopback(host):
        click.secho(insecure_warning(host), err=True, fg="red", bold=True)
    return {"tokens": tuple(tokens), "allowed_hosts": allowed_hosts, "allowed_origins": allowed_origins}


def provider_options(func: click.decorators.FC) -> click.decorators.FC:
    """Event handlers and the server group provider: ``--event-handler``, ``--inventory``, ... ."""
    func = click.option(
        "--server-groups-option",
        "server_groups_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="An option of the server group provider; repeatable.",
    )(func)
    func = click.option(
        "--inventory",
        type=click.Path(dir_okay=False),
        envvar="WATERFLOW_INVENTORY",
        help="Inventory file (YAML) of the 'inventory' server group provider; selects it unless "
        "--server-groups names another [env WATERFLOW_INVENTORY].",
    )(func)
    func = click.option(
        "--server-groups",
        envvar="WATERFLOW_SERVER_GROUPS",
        metavar="PROVIDER",
        help="Server group provider strategy.each-server asks: 'agents' (live agents, the default), "
        "'inventory', or a plugin's [env WATERFLOW_SERVER_GROUPS].",
    )(func)
    func = click.option(
        "--event-spool",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="WATERFLOW_EVENT_SPOOL",
        help="Directory keeping the event queues on disk: events queued when the server dies are "
        "delivered by the next server started with it [env WATERFLOW_EVENT_SPOOL].",
    )(func)
    func = click.option(
        "--event-option",
        "event_options",
        multiple=True,
        metavar="HANDLER.KEY=VALUE",
        help="An option of an event handler (webhook.url=https://...); repeatable. Also "
        "WATERFLOW_EVENT_<HANDLER>_<KEY> variables (keep secrets there).",
    )(func)
    return click.option(
        "--event-handler",
        "event_handlers",
        multiple=True,
        envvar="WATERFLOW_EVENT_HANDLERS",
        callback=_split_list,
        metavar="NAME",
        help="Event handler that receives run and step events: 'log' (the default), 'webhook', or a "
        "plugin's; repeatable [env WATERFLOW_EVENT_HANDLERS, comma-separated].",
    )(func)


def provider_settings(
    event_handlers: tuple[str, ...],
    event_options: tuple[str, ...],
    server_groups: str | None,
    server_groups_options: tuple[str, ...],
    inventory: str | None,
    event_spool: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check the provider selection and options; the ``ServerSettings`` fields they fill.

    ``environ`` (default: this process's) holds the ``WATERFLOW_EVENT_<HANDLER>_<KEY>`` options.

    Raises :class:`click.ClickException` naming the flag or variable of any mistake.
    """
    from ..providers_config import (
        DEFAULT_EVENT_HANDLERS,
        ProviderConfigError,
        event_handler_choices,
        server_group_choice,
    )

    try:
        handlers = event_handler_choices(
            tuple(dict.fromkeys(event_handlers or DEFAULT_EVENT_HANDLERS)),
            event_options,
            os.environ if environ is None else environ,
        )
        groups = server_group_choice(server_groups, server_groups_options, inventory)
    except ProviderConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if event_spool is not None:
        from ..event_spool import Spool, SpoolError

        for choice in handlers:  # a spool in use or not writable: say so now, not from the worker
            try:
                Spool(event_spool, choice.name).close()
            except SpoolError as exc:
                raise click.ClickException(f"--event-spool: {exc}") from None
    return {"event_handlers": handlers, "event_spool": event_spool, "server_groups": groups}


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
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@temporal_options
@click.option(
    "--max-body-bytes",
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest request body accepted; bigger ones get 413.",
)
@click.option("--no-worker", is_flag=True, help="Serve the API only; another server hosts the interpreter worker.")
@access_options
@provider_options
@click.option("-v", "--verbose", is_flag=True, help="Log requests and lifecycle at INFO level.")
def server_command(
    host: str,
    port: int,
    temporal_address: str,
    namespace: str,
    max_body_bytes: int,
    no_worker: bool,
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
    """Run the Waterflow API server (stateless: every run lives in Temporal).

    It also hosts the interpreter workflow worker, so at least one server must run for runs to
    advance. Stop it with Ctrl-C or SIGTERM.

    With WATERFLOW_API_TOKEN or --token-file every endpoint but /healthz and the API docs needs
    a bearer token; on an address other than loopback one is required (or --insecure).
    """
    configure_logging(verbose)
    access = access_settings(host, token_file, allowed_hosts, allowed_origins, insecure)
    providers = provider_settings(
        event_handlers, event_options, server_groups, server_groups_options, inventory, event_spool
    )
    from waterflow_core.temporal import TemporalSettings, TemporalSettingsError

    from ..settings import ServerSettings

    temporal = TemporalSettings.from_env().model_copy(update={"address": temporal_address, "namespace": namespace})
    try:
        temporal.tls_config()  # a TLS settings mistake now, not after the connection retries
    except TemporalSettingsError as exc:
        raise click.ClickException(str(exc)) from None
    settings = ServerSettings(
        temporal=temporal,
        host=host,
        port=port,
        max_body_bytes=max_body_bytes,
        run_worker=not no_worker,
        **access,
        **providers,
    )
    try:
        asyncio.run(run_server(settings))
    except KeyboardInterrupt:
        pass
    except ServerFailure as exc:
        click.echo(f"error: {exc}", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # Nothing was started to clean up; skipping interpreter finalization avoids an occasional
        # abort (SIGABRT) from the Temporal core's threads after failed TLS connections.
        os._exit(1)


class ServerFailure(Exception):
    """A start-up failure to report in one line."""


async def run_server(settings: object) -> None:
    """Connect to Temporal, serve until SIGINT/SIGTERM, then stop cleanly."""
    from ..api.app import TemporalConnectError, start_api
    from ..api.security import auth_summary
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
        click.echo(f"Waterflow API listening on http://{settings.host}:{port} (Temporal {settings.temporal.address})")
        click.echo(f"API docs: http://{settings.host}:{port}/docs")
        click.echo(f"API access: {auth_summary(settings.tokens)}")
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        click.echo("stopping...")
        await stop_http(server, task)
