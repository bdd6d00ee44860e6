"""``waterflow server``: the REST API plus the interpreter worker, against any Temporal."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from waterflow_sdk.config_layers import FlagMap, config_option, log_options, option_pairs

from .hooks_option import hooks_option, hooks_settings

if TYPE_CHECKING:
    from waterflow_core.config import Loaded
    from waterflow_core.config_sections import LoggingSection
    from waterflow_core.temporal import TemporalSettings

    from ..config import AccessSection, LimitsSection, ServerConfig


def temporal_options(func: click.decorators.FC) -> click.decorators.FC:
    """``--temporal-address`` and ``--namespace`` (also ``[temporal]`` and ``WATERFLOW_TEMPORAL_*``)."""
    func = click.option(
        "--namespace",
        help="Temporal namespace [default default; env WATERFLOW_TEMPORAL_NAMESPACE].",
    )(func)
    return click.option(
        "--temporal-address",
        help="Temporal frontend host:port [default 127.0.0.1:7233; env WATERFLOW_TEMPORAL_ADDRESS]. TLS and "
        "API keys: [temporal] in the file, WATERFLOW_TEMPORAL_TLS*, WATERFLOW_TEMPORAL_API_KEY.",
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
        callback=_split_list,
        help="Web origin (https://ui.example) allowed to call the API besides the server itself; "
        "repeatable [env WATERFLOW_ALLOWED_ORIGINS, comma-separated].",
    )(func)
    func = click.option(
        "--allowed-host",
        "allowed_hosts",
        multiple=True,
        callback=_split_list,
        help="Host name the API answers to besides loopback names, IP literals and --host; "
        "repeatable, '*' for any [env WATERFLOW_ALLOWED_HOSTS, comma-separated].",
    )(func)
    return click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="File of API tokens, one '<name> <read|operator> <token>' per line (mode 600) "
        "[env WATERFLOW_API_TOKEN_FILE]. WATERFLOW_API_TOKEN adds one operator token.",
    )(func)


def access_settings(host: str, access: AccessSection) -> dict[str, Any]:
    """Load the tokens and check the exposure; the ``ServerSettings`` fields they fill.

    Raises :class:`click.ClickException` for a bad token configuration or an unauthenticated
    non-loopback address without ``--insecure``; prints the loud warning when ``--insecure`` is used.
    """
    from ..api.auth import TOKEN_ENV, TokenConfigError, load_tokens
    from ..api.security import exposure_problem, insecure_warning, is_loopback

    token = access.token.get_secret_value() if access.token else ""
    try:
        tokens = load_tokens(environ={TOKEN_ENV: token}, token_file=access.token_file)
    except TokenConfigError as exc:
        raise click.ClickException(str(exc)) from None
    problem = exposure_problem(host, bool(tokens), access.insecure)
    if problem:
        raise click.ClickException(problem)
    if not tokens and not is_loopback(host):
        click.secho(insecure_warning(host), err=True, fg="red", bold=True)
    return {
        "tokens": tuple(tokens),
        "allowed_hosts": tuple(access.allowed_hosts),
        "allowed_origins": tuple(access.allowed_origins),
    }


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
        help="Inventory file (YAML) of the 'inventory' server group provider; selects it unless "
        "--server-groups names another [env WATERFLOW_INVENTORY].",
    )(func)
    func = click.option(
        "--server-groups",
        metavar="PROVIDER",
        help="Server group provider strategy.each-server asks: 'agents' (live agents, the default), "
        "'inventory', or a plugin's [env WATERFLOW_SERVER_GROUPS].",
    )(func)
    func = click.option(
        "--event-spool",
        type=click.Path(file_okay=False, path_type=Path),
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
        callback=_split_list,
        metavar="NAME",
        help="Event handler that receives run and step events: 'log' (the default), 'webhook', or a "
        "plugin's; repeatable [env WATERFLOW_EVENT_HANDLERS, comma-separated].",
    )(func)


def provider_settings(
    loaded: Loaded[Any],
    event_options: tuple[str, ...],
    server_groups_options: tuple[str, ...],
    event_spool: Path | None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check the provider selection and options; the ``ServerSettings`` fields they fill.

    ``event_options`` and ``server_groups_options`` are the flags as given; ``environ`` (default:
    this process's) holds the ``WATERFLOW_EVENT_<HANDLER>_<KEY>`` options.

    Raises :class:`click.ClickException` naming the key, flag or variable of any mistake.
    """
    from waterflow_sdk.config_layers import file_entries

    from ..providers_config import ProviderConfigError, event_handler_choices, server_group_choice

    config = loaded.config
    file_name = str(loaded.file or "")
    try:
        handlers = event_handler_choices(
            tuple(dict.fromkeys(config.events.handlers)),
            event_options,
            os.environ if environ is None else environ,
            file_entries(loaded, "events.options"),
            file_name,
        )
        inventory = config.server_groups.inventory
        groups = server_group_choice(
            config.server_groups.provider,
            server_groups_options,
            str(inventory) if inventory else None,
            file_entries(loaded, "server_groups.options"),
            file_name,
        )
    except ProviderConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if event_spool is not None:
        from ..event_spool import Spool, SpoolError

        for choice in handlers:  # a spool in use or not writable: say so now, not from the worker
            try:
                Spool(event_spool, choice.name).close()
            except SpoolError as exc:
                raise click.ClickException(f"{loaded.where('events.spool')}: {exc}") from None
    return {"event_handlers": handlers, "event_spool": event_spool, "server_groups": groups}


def limit_settings(limits: LimitsSection) -> dict[str, Any]:
    """The ``ServerSettings`` fields of the request limits."""
    return {
        "max_body_bytes": limits.max_body_bytes,
        "follow_poll_seconds": limits.follow_poll,
        "validation_workers": limits.validation_workers,
        "validation_queue": limits.validation_queue,
        "validation_budget_seconds": limits.validation_budget,
        "streams_per_client": limits.streams_per_client,
        "streams_total": limits.streams_total,
        "stream_max_seconds": limits.stream_max_duration,
    }


def temporal_checked(temporal: TemporalSettings) -> TemporalSettings:
    """``temporal`` once its TLS files are known to work (a mistake now, not after the retries)."""
    from waterflow_core.temporal import TemporalSettingsError

    try:
        temporal.tls_config()
    except TemporalSettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return temporal


def configure_logging(settings: LoggingSection) -> None:
    """The process's log on stderr: text lines or JSON objects."""
    from waterflow_core.logformat import configure_logging as configure

    configure(settings.level, settings.format)


SHARED_FLAGS: FlagMap = {
    "host": "api.host",
    "port": "api.port",
    "temporal_address": "temporal.address",
    "namespace": "temporal.namespace",
    "token_file": "access.token_file",
    "allowed_hosts": "access.allowed_hosts",
    "allowed_origins": "access.allowed_origins",
    "insecure": "access.insecure",
    "event_handlers": "events.handlers",
    "event_options": ("events.options", lambda values: option_pairs(values, nested=True)),
    "event_spool": "events.spool",
    "server_groups": "server_groups.provider",
    "inventory": "server_groups.inventory",
    "server_groups_options": ("server_groups.options", option_pairs),
    "log_level": "logging.level",
    "verbose": ("logging.level", lambda _: "info"),
    "log_format": "logging.format",
}
"""Flags of ``waterflow server`` and ``waterflow dev`` → configuration keys."""
SERVER_FLAGS: FlagMap = {
    **SHARED_FLAGS,
    "max_body_bytes": "limits.max_body_bytes",
    "no_worker": ("api.run_worker", lambda no_worker: not no_worker),
    "task_queue": "api.task_queue",
}


def server_config(ctx: click.Context) -> Loaded[ServerConfig]:
    """The configuration of a parsed ``waterflow server`` command line (exits 2 on a mistake)."""
    from waterflow_sdk.config_layers import load

    from ..config import ServerConfig

    return load(ServerConfig, ctx, SERVER_FLAGS)


@click.command("server")
@config_option
@click.option("--host", help="Interface to listen on [default 127.0.0.1; env WATERFLOW_API_HOST].")
@click.option(
    "--port", type=click.IntRange(0, 65535), help="TCP port, 0 for any [default 8080; env WATERFLOW_API_PORT]."
)
@temporal_options
@click.option(
    "--max-body-bytes",
    type=click.IntRange(1024),
    help="Largest request body accepted; bigger ones get 413 [default 1048576; env WATERFLOW_LIMITS_MAX_BODY_BYTES].",
)
@click.option("--no-worker", is_flag=True, help="Serve the API only; another server hosts the interpreter worker.")
@click.option(
    "--task-queue",
    help="Task queue of the interpreter worker and of the runs this server starts (default waterflow-server).",
)
@access_options
@provider_options
@hooks_option
@log_options("warning")
@click.option("-v", "--verbose", is_flag=True, help="Log requests and lifecycle at INFO level (--log-level info).")
@click.pass_context
def server_command(ctx: click.Context, **_: Any) -> None:
    """Run the Waterflow API server (stateless: every run lives in Temporal).

    It also hosts the interpreter workflow worker, so at least one server must run for runs to
    advance. Stop it with Ctrl-C or SIGTERM.

    Settings come from flags, then WATERFLOW_* variables, then the --config file, then defaults
    (`waterflow config show --server` prints them and where each came from).

    With WATERFLOW_API_TOKEN or --token-file every endpoint but /healthz, the API docs, the web
    console's files (/ui; the console asks for a token for its data) and signed webhooks
    (/v1/hooks/NAME) needs a bearer token; on an address other than loopback one is required
    (or --insecure).
    """
    from ..settings import ServerSettings

    loaded = server_config(ctx)
    config = loaded.config
    configure_logging(config.logging)
    access = access_settings(config.api.host, config.access)
    providers = provider_settings(
        loaded, ctx.params["event_options"], ctx.params["server_groups_options"], config.events.spool
    )
    settings = ServerSettings(
        temporal=temporal_checked(config.temporal),
        host=config.api.host,
        port=config.api.port,
        run_worker=config.api.run_worker,
        task_queue=config.api.task_queue,
        temporal_ui_url=config.console.temporal_ui_url,
        **limit_settings(config.limits),
        **access,
        **providers,
        **hooks_settings(ctx.params["hooks_file"]),
    )
    code = 0
    try:
        asyncio.run(run_server(settings))
    except KeyboardInterrupt:
        pass
    except ServerFailure as exc:
        click.echo(f"error: {exc}", err=True)
        code = 1
    # Stopped cleanly (or nothing was started). Interpreter finalization can then abort the
    # process from the Temporal core's threads (SIGABRT, "PyGILState_Release": seen after failed
    # TLS connections and in about 1 stop in 6 in a container), so it is skipped.
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


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
        click.echo(f"Web console: http://{settings.host}:{port}/ui/")
        click.echo(f"API access: {auth_summary(settings.tokens)}")
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        click.echo("stopping...")
        await stop_http(server, task)
