"""An httpx transport that resolves names itself and connects only to checked addresses.

httpx hands the URL's host to httpcore, which hands it to a *network backend* to open a TCP
stream. Our backend resolves the host, checks the name and every address against the
:class:`~.policy.NetworkPolicy`, and connects to those very addresses. TLS still runs over that
stream with the URL's host name for SNI and certificate checks, and the ``Host`` header still
comes from the URL, so the server sees an ordinary request. Every redirect opens its connection
through the same backend, so redirects are checked like the first request.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterable

import httpcore
import httpx

from .policy import IPAddress, NetworkPolicy, parse_address

#: Called with (host, address, port) right before each connection attempt.
ConnectObserver = Callable[[str, str, int], None]


class PolicyBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check, then connect to the checked address (never re-resolving)."""

    def __init__(self, policy: NetworkPolicy, on_connect: ConnectObserver | None = None) -> None:
        self.policy = policy
        self.on_connect = on_connect
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Open a stream to an allowed address of ``host``; raise ``RefusedByPolicy`` otherwise."""
        self.policy.check_name(host)  # a denied name is never resolved
        addresses = await resolve(host, port)
        self.policy.check_addresses(host, addresses)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            if self.on_connect is not None:
                self.on_connect(host, str(address), port)
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as err:
                failure = err  # try the next address, like getaddrinfo-based clients do
        assert failure is not None  # resolve() never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets bypass the address policy, so they are not offered at all."""
        raise httpcore.ConnectError("unix sockets are not supported by http/request")

    async def sleep(self, seconds: float) -> None:
        """Used by httpcore between connection retries."""
        await asyncio.sleep(seconds)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of ``host`` (a literal IP resolves to itself without a DNS query)."""
    literal = parse_address(host.strip("[]"))
    if literal is not None:
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise httpcore.ConnectError(f"cannot resolve {host}: {err.strerror}") from err
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = parse_address(str(sockaddr[0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
    return addresses


class PolicyTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connection pool uses :class:`PolicyBackend`.

    httpx does not take a network backend, so the pool it built is replaced with one configured
    the same way; request/response and exception mapping stay httpx's own.
    """

    def __init__(
        self,
        policy: NetworkPolicy,
        ssl_context: ssl.SSLContext,
        *,
        on_connect: ConnectObserver | None = None,
    ) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        limits = httpx.Limits()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=PolicyBackend(policy, on_connect),
        )
