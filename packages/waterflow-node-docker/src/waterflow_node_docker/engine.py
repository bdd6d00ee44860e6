"""A small client of the Docker Engine API over the daemon's unix socket.

The nodes need what the ``docker`` command does not give: the id of an exec (to find and stop
its process on cancellation) and container state as data. Paths are unversioned, so the daemon
answers in its own API version; only long-stable endpoints are used.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from .errors import DockerUnavailable

DEFAULT_SOCKET = "/var/run/docker.sock"
API_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
_HEADER = struct.Struct(">BxxxL")  # stream id, three zero bytes, big-endian payload size
STDOUT, STDERR = 1, 2


class EngineError(Exception):
    """The daemon answered with an error status; ``message`` is its explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status
        self.message = message


def socket_path(environ: Mapping[str, str], agent: str) -> str:
    """The daemon socket named by ``DOCKER_HOST`` (``unix://`` only), or the default socket."""
    host = environ.get("DOCKER_HOST", "").strip()
    if not host:
        return DEFAULT_SOCKET
    if host.startswith("unix://") and len(host) > len("unix://"):
        return host.removeprefix("unix://")
    raise DockerUnavailable(
        f"DOCKER_HOST={host!r} on agent {agent}: the Docker nodes talk to a local daemon through its unix "
        "socket (unix:///path); run the agent on the Docker host",
        retryable=False,
    )


def path(template: str, *parts: str) -> str:
    """An API path with each of ``parts`` percent-encoded as one path segment."""
    return template.format(*(quote(part, safe="") for part in parts))


class FrameReader:
    """Splits Docker's multiplexed stream (no TTY) into ``(stream id, payload)`` frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The frames completed by ``data``; an incomplete one waits for more bytes."""
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        while len(self._buffer) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            frames.append((stream, bytes(self._buffer[_HEADER.size : end])))
            del self._buffer[:end]
        return frames


class Engine:
    """``async with Engine(socket, agent) as engine``: requests to one daemon, errors made clear."""

    def __init__(self, socket: str, agent: str) -> None:
        self.socket = socket
        self.agent = agent or "(local)"
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_environment(cls, agent: str, environ: Mapping[str, str] = os.environ) -> Engine:
        """The daemon the agent process is configured for (``DOCKER_HOST`` or the default socket)."""
        return cls(socket_path(environ, agent or "(local)"), agent)

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=self.socket),
            base_url="http://docker",
            timeout=httpx.Timeout(API_TIMEOUT, connect=CONNECT_TIMEOUT),
            trust_env=False,
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The HTTP client (inside ``async with``)."""
        if self._client is None:
            raise RuntimeError("use the Engine inside `async with`")
        return self._client

    async def ping(self) -> None:
        """Raise :class:`DockerUnavailable` unless the daemon answers."""
        await self.call("GET", "/_ping")

    async def call(self, method: str, url: str, *, params: Mapping[str, str] | None = None, body: Any = None) -> Any:
        """One request; the decoded JSON answer (``None`` when empty). Raises :class:`EngineError`."""
        response = await self._request(method, url, params=params, body=body)
        if not response.content or not response.headers.get("content-type", "").startswith("application/json"):
            return None
        return response.json()

    async def read(self, url: str, *, params: Mapping[str, str] | None = None) -> bytes:
        """One ``GET``; the raw body. Raises :class:`EngineError`."""
        return (await self._request("GET", url, params=params, body=None)).content

    async def _request(self, method: str, url: str, *, params: Mapping[str, str] | None, body: Any) -> httpx.Response:
        try:
            response = await self.client.request(method, url, params=params, json=body)
        except httpx.TransportError as err:
            raise self.unreachable(err) from None
        if response.status_code >= 400:
            raise EngineError(response.status_code, _message(response.content))
        return response

    async def inspect(self, template: str, name: str) -> dict[str, Any] | None:
        """``GET`` the object at ``template`` (one name segment), or ``None`` when it does not exist."""
        try:
            answer = await self.call("GET", path(template, name))
        except EngineError as err:
            if err.status == 404:
                return None
            raise
        return dict(answer)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str, *, body: Any = None) -> AsyncIterator[httpx.Response]:
        """A streamed response without a read timeout (the step's own timeout bounds it)."""
        try:
            async with self.client.stream(
                method, url, json=body, timeout=httpx.Timeout(API_TIMEOUT, connect=CONNECT_TIMEOUT, read=None)
            ) as response:
                if response.status_code >= 400:
                    raise EngineError(response.status_code, _message(await response.aread()))
                yield response
        except httpx.TransportError as err:
            raise self.unreachable(err) from None

    def unreachable(self, err: Exception) -> DockerUnavailable:
        """Why the daemon could not be reached, as precisely as the socket tells."""
        where = f"unix://{self.socket}"
        if not os.path.exists(self.socket):
            return DockerUnavailable(
                f"no Docker daemon socket at {self.socket} on agent {self.agent}: is Docker installed and running?",
                retryable=True,
            )
        if not os.access(self.socket, os.R_OK | os.W_OK):
            return DockerUnavailable(
                f"agent {self.agent} may not use the Docker socket {self.socket} (permission denied): run the "
                "agent as root or as a member of the docker group",
                retryable=False,
            )
        return DockerUnavailable(
            f"the Docker daemon at {where} on agent {self.agent} does not answer: {type(err).__name__}: {err}",
            retryable=True,
        )


def _message(content: bytes) -> str:
    text = content.decode(errors="replace").strip()
    try:
        decoded = json.loads(text)
    except ValueError:
        return text or "no message"
    return str(decoded.get("message", text)) if isinstance(decoded, dict) else text
