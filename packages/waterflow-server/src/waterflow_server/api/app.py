"""The BlackSheep application: routes, docs, errors, metrics and the hosted interpreter worker."""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from blacksheep import Application, Request, Response
from blacksheep.server.routing import Router
from temporalio.client import Client

from ..console.serving import register_console_routes
from ..serving import EmbeddedServer, start_http
from ..settings import ServerSettings
from ..worker_host import InterpreterWorkerHost
from .metrics import Metrics
from .nodes import NodeDirectory
from .openapi import install_api_docs
from .problems import APIError, install_error_handlers
from .routes import register_routes
from .runs import RunService
from .security import AccessPolicy, RequestGuard
from .streams import StreamLimits
from .validation import ValidationPool

log = logging.getLogger(__name__)

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _version() -> str:
    try:
        return importlib.metadata.version("waterflow-server")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


class TemporalConnectError(Exception):
    """Temporal could not be reached while the server started."""


@dataclass
class AppState:
    """What the handlers share; filled in when the application starts."""

    settings: ServerSettings
    metrics: Metrics = field(default_factory=Metrics)
    version: str = field(default_factory=_version)
    client: Any = None
    runs: Any = None
    nodes: Any = None
    worker: Any = None


async def start_api(settings: ServerSettings) -> tuple[EmbeddedServer, asyncio.Task[None]]:
    """Connect to Temporal (retrying for 30 s while it starts), build the app and serve it.

    Raises :class:`TemporalConnectError` or :class:`~.serving.ServerStartError`.
    """
    client = await connect_with_retry(settings, timeout=30.0)
    return await start_http(create_app(settings, client=client), settings.host, settings.port)


async def connect_with_retry(settings: ServerSettings, timeout: float) -> Client:
    """Connect to Temporal, retrying for up to ``timeout`` seconds (it may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await settings.temporal.connect(identity=f"waterflow-server@{settings.host}:{settings.port}")
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise TemporalConnectError(
                    f"cannot reach Temporal at {settings.temporal.address} "
                    f"(namespace {settings.temporal.namespace}): {exc}"
                ) from exc
            await asyncio.sleep(0.5)


def create_app(
    settings: ServerSettings | None = None,
    *,
    client: Client | None = None,
    connect_timeout: float = 30.0,
) -> Application:
    """Build the API application.

    With ``client`` the app uses that Temporal client; otherwise it connects on start-up using
    ``settings.temporal``. The interpreter worker starts with the app and stops with it.
    """
    settings = settings or ServerSettings()
    state = AppState(settings=settings)
    app = Application(router=Router(), show_error_details=False)
    app.show_error_details = False  # never a traceback, whatever APP_SHOW_ERROR_DETAILS says
    app.logger.setLevel(logging.WARNING)  # 4xx answers are not news; errors still are

    install_error_handlers(app)
    docs = install_api_docs(app, state.version)
    register_routes(app, docs, state)
    register_console_routes(app, docs, state)
    app.router.fallback = _fallback(app)
    app.middlewares.append(state.metrics.middleware(app))
    # Inside the metrics middleware, so refusals are counted too.
    app.middlewares.append(
        RequestGuard(AccessPolicy(settings.tokens, settings.host, settings.allowed_hosts, settings.allowed_origins))
    )

    async def on_start(application: Application) -> None:
        state.client = client or await connect_with_retry(settings, connect_timeout)
        state.nodes = NodeDirectory(state.client)
        state.runs = RunService(
            state.client,
            state.nodes,
            validation=ValidationPool(
                workers=settings.validation_workers,
                queue=settings.validation_queue,
                budget=settings.validation_budget_seconds,
            ),
            streams=StreamLimits(
                per_client=settings.streams_per_client,
                total=settings.streams_total,
                max_seconds=settings.stream_max_seconds,
            ),
            task_queue=settings.task_queue,
        )
        state.worker = InterpreterWorkerHost(
            state.client,
            settings.task_queue,
            enabled=settings.run_worker,
            event_handlers=settings.event_handlers,
            event_spool=settings.event_spool,
            server_groups=settings.server_groups,
            event_taps=(state.metrics.runs.observe,),
        )
        await state.worker.start()
        log.info(
            "waterflow server ready (Temporal %s, namespace %s)",
            settings.temporal.address,
            settings.temporal.namespace,
        )

    async def on_stop(application: Application) -> None:
        if state.worker is not None:
            await state.worker.stop()

    app.on_start += on_start
    app.on_stop += on_stop
    app.state = state  # type: ignore[attr-defined]
    return app


def _fallback(app: Application) -> Any:
    async def fallback(request: Request) -> Response:
        path = request.path
        allowed = [m for m in _METHODS if app.router.get_matching_route(m, path) is not None]
        if allowed:
            raise APIError(
                405,
                "method_not_allowed",
                f"method {request.method} is not allowed on {path}; use {', '.join(allowed)}",
            )
        raise APIError(404, "not_found", f"no such resource: {request.method} {path}")

    return fallback
