"""A minimal guard for the URLs ``file/transfer`` talks to.

Only http/https, and never link-local or cloud-metadata addresses (after DNS resolution, IPv4
mapped into IPv6 included), so a workflow cannot make an agent fetch its cloud credentials. The
full network policy (allow/deny lists, proxies) belongs to ``http/request``; this node keeps
only this guard until that policy can be shared.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

from .errors import bad_input

SCHEMES = frozenset({"http", "https"})
DENIED_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local, incl. 169.254.169.254 metadata
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_url(value: str) -> bool:
    """Whether ``value`` is meant as a URL (has a scheme) rather than an agent path."""
    head, sep, _ = value.partition("://")
    return bool(sep) and head.isascii() and head.replace("+", "").replace("-", "").replace(".", "").isalnum()


def parse_url(raw: str, field: str) -> httpx.URL:
    """Parse ``raw`` as an http/https URL with a host, or raise a non-retryable error."""
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError) as exc:
        raise bad_input(f"{field} {raw!r} is not a valid URL: {exc}", field=field) from None
    if url.scheme not in SCHEMES:
        raise bad_input(f"{field} {raw!r}: only http and https URLs are supported, not {url.scheme!r}", field=field)
    if not url.host:
        raise bad_input(f"{field} {raw!r} has no host", field=field)
    return url


def denied(address: IPAddress) -> bool:
    """Whether connecting to ``address`` is refused."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in DENIED_NETWORKS)


async def check_url(url: httpx.URL, field: str) -> None:
    """Refuse ``url`` when its host is, or resolves to, a denied address.

    A literal address is judged without any lookup, so nothing is ever sent to it.
    """
    host = url.host
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, url.port or (443 if url.scheme == "https" else 80), type=socket.SOCK_STREAM
            )
        except OSError:
            return  # the connection attempt reports the lookup failure, as a retryable error
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        if denied(address):
            raise bad_input(
                f"{field} {str(url)!r} refused: {host} is a link-local or cloud-metadata address ({address}); "
                "file/transfer never connects there",
                field=field,
                url=str(url),
            )
