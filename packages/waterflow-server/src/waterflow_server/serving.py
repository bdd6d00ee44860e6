"""Serving the app with uvicorn inside an event loop we control (no signal handling of its own).

``waterflow server`` and ``waterflow dev`` install their own SIGINT/SIGTERM handlers and stop
everything in order; uvicorn's own handlers would re-raise the signal after its shutdown and end
the process with a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator

import uvicorn
from blacksheep import Application

log = logging.getLogger(__name__)


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its owner."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServerStartError(Exception):
    """The HTTP server could not start (port taken, app start-up failed)."""


async def start_http(
    app: Application, host: str, port: int, *, log_level: str = "warning"
) -> tuple[EmbeddedServer, asyncio.Task[None]]:
    """Start serving ``app``; returns once the socket listens (raises if start-up failed)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        # Bigger bodies are refused by the app with 413; this only bounds header junk.
        h11_max_incomplete_event_size=64 * 1024,
    )
    server = EmbeddedServer(config)
    task = asyncio.create_task(_serve(server), name=f"http-{host}:{port}")
    while not server.started:
        if task.done():
            exc = task.exception()
            raise ServerStartError(
                f"the API server did not start on {host}:{port}: {exc or 'see the log above'}"
            )
        await asyncio.sleep(0.05)
    return server, task


async def _serve(server: EmbeddedServer) -> None:
    try:
        await server.serve()
    except SystemExit as exc:  # uvicorn exits on start-up failure (port in use, lifespan error)
        raise ServerStartError(f"exit status {exc.code}") from None


async def stop_http(server: EmbeddedServer, task: asyncio.Task[None]) -> None:
    """Graceful shutdown: stop accepting, finish requests (streams get a few seconds), run on_stop."""
    server.should_exit = True
    with contextlib.suppress(Exception):
        await task


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT or SIGTERM for the duration of the block; a second signal is fatal."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def handle(sig: int) -> None:
        received.append(sig)
        if len(received) > 1:
            # The user insists: leave now. Children die with us (parent-death signal).
            sys.stderr.write("second signal: exiting immediately\n")
            sys.stderr.flush()
            os._exit(130)
        stop.set()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, handle, sig)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
