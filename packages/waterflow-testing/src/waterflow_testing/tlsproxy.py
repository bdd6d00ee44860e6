"""A TLS-terminating TCP proxy: Temporal behind TLS (and mutual TLS) in tests.

``temporal server start-dev`` has no TLS options, so a test that proves Waterflow's processes speak
TLS to Temporal puts this proxy in front of the dev server's plain-text port: it completes the TLS
handshake (ALPN ``h2``, as gRPC requires), optionally demands a client certificate signed by a
given CA, and then copies bytes both ways. Handshake failures are recorded in :attr:`TLSProxy.refused`
so a test can tell "refused at TLS" from "never tried".
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["TLSProxy"]

_CHUNK = 64 * 1024


class TLSProxy:
    """Listen with TLS on a free 127.0.0.1 port and forward each connection to ``upstream``.

    Runs on its own event loop in a daemon thread, so synchronous and asynchronous tests (and the
    real processes they start) can all reach it. Use as a context manager or ``start()``/``stop()``.
    """

    def __init__(
        self,
        upstream: str,
        cert: Path,
        key: Path,
        *,
        client_ca: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        up_host, _, up_port = upstream.rpartition(":")
        self._upstream = (up_host, int(up_port))
        self._host = host
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.context.set_alpn_protocols(["h2"])
        if client_ca is not None:
            self.context.load_verify_locations(client_ca)
            self.context.verify_mode = ssl.CERT_REQUIRED
        self.port = 0
        self.accepted = 0  # connections whose handshake succeeded
        self.refused: list[str] = []  # why each failed handshake failed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        """``host:port`` clients connect to."""
        return f"{self._host}:{self.port}"

    def start(self) -> Self:
        """Bind and start serving; returns once the port is open."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="waterflow-tlsproxy", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Close the listener and every open connection, then end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        # TLS is done by hand after accept (not start_server(ssl=...)) so a failed handshake is
        # seen here, with its reason, instead of only in asyncio's logger.
        self._server = await asyncio.start_server(self._handle, self._host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Cancelled only by stop(): ending quietly keeps asyncio from logging every open link.
        with contextlib.suppress(asyncio.CancelledError):
            await self._forward(reader, writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.start_tls(self.context, ssl_handshake_timeout=10)
        except (ssl.SSLError, OSError, TimeoutError) as err:
            self.refused.append(f"{type(err).__name__}: {err}")
            writer.transport.abort()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer), return_exceptions=True)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
        writer.close()
