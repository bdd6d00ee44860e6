"""Which hosts and addresses ``http/request`` may connect to, per agent.

The policy is checked twice for every connection: on the host name (before any DNS query, so a
denied name is never even resolved) and on every address the name resolves to. The transport
then connects to exactly the addresses that were checked (see :mod:`.transport`), so there is no
window between check and connect for a DNS answer to change.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ENV_ALLOW = "WATERFLOW_HTTP_ALLOW"
ENV_DENY = "WATERFLOW_HTTP_DENY"

#: Always denied, whatever the environment says: link-local ranges (where cloud metadata services
#: live) and the metadata endpoints themselves. A step that can reach them can usually read the
#: host's cloud credentials. Loopback and private ranges stay allowed: ops checks hit them.
BUILTIN_DENY: tuple[str, ...] = (
    "169.254.0.0/16",  # IPv4 link-local; AWS/Azure/GCP/OCI metadata at 169.254.169.254
    "fe80::/10",  # IPv6 link-local
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "100.100.100.200/32",  # Alibaba Cloud metadata
    "64:ff9b::a9fe:0/112",  # 169.254.0.0/16 through the well-known NAT64 prefix
    "metadata.google.internal",
    "metadata.goog",
)


class RefusedByPolicy(Exception):
    """A connection the agent's network policy does not allow; never worth a retry."""

    def __init__(self, host: str, address: str | None, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        where = f"{host} ({address})" if address and address != host else host
        super().__init__(f"connection to {where} refused by the agent's network policy: {reason}")


@dataclass(frozen=True)
class Rules:
    """A list of CIDRs and host names; ``*.example.com`` / ``.example.com`` match subdomains."""

    networks: tuple[IPNetwork, ...] = ()
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str], *, source: str) -> Rules:
        """Parse entries; raise ``ValueError`` naming ``source`` and the bad entry."""
        networks: list[IPNetwork] = []
        names: set[str] = set()
        suffixes: list[str] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(_network(entry))
                continue
            except ValueError:
                pass
            name = entry.removeprefix("*.") if entry.startswith("*.") else entry
            if entry.startswith(("*.", ".")):
                name = "." + name.lstrip(".")
            if not _looks_like_host(name.lstrip(".")):
                raise ValueError(f"{source}: {raw.strip()!r} is neither a CIDR, an IP address nor a host name")
            if name.startswith("."):
                suffixes.append(name)
            else:
                names.add(name.rstrip("."))
        return cls(tuple(networks), frozenset(names), tuple(suffixes))

    def __bool__(self) -> bool:
        return bool(self.networks or self.names or self.suffixes)

    def match_name(self, host: str) -> str | None:
        """The entry matching host name ``host`` (normalised), or ``None``."""
        if host in self.names:
            return host
        return next((f"*{s}" for s in self.suffixes if host.endswith(s)), None)

    def match_address(self, address: IPAddress) -> IPNetwork | None:
        """The network containing ``address``, or ``None``."""
        return next((n for n in self.networks if n.version == address.version and address in n), None)


@dataclass(frozen=True)
class NetworkPolicy:
    """Deny wins; with an allow list, a connection needs its name or all its addresses allowed."""

    deny: Rules = field(default_factory=lambda: Rules.parse(BUILTIN_DENY, source="built-in deny list"))
    allow: Rules = field(default_factory=Rules)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NetworkPolicy:
        """The policy from ``WATERFLOW_HTTP_ALLOW`` / ``WATERFLOW_HTTP_DENY`` (comma-separated)."""
        env = os.environ if environ is None else environ
        deny = [*BUILTIN_DENY, *env.get(ENV_DENY, "").split(",")]
        return cls(
            deny=Rules.parse(deny, source=ENV_DENY),
            allow=Rules.parse(env.get(ENV_ALLOW, "").split(","), source=ENV_ALLOW),
        )

    def check_name(self, host: str) -> None:
        """Refuse a denied host name before it is resolved."""
        name = normalise_host(host)
        if (literal := parse_address(name)) is not None:
            self.check_addresses(host, [literal])
            return
        if (entry := self.deny.match_name(name)) is not None:
            raise RefusedByPolicy(host, None, f"host name matches denied {entry!r}")

    def check_addresses(self, host: str, addresses: Sequence[IPAddress]) -> None:
        """Refuse unless every address ``host`` resolved to may be connected to.

        One denied address refuses the whole name: a name that resolves to both an internal
        service and a metadata address is either misconfigured or an attack.
        """
        name = normalise_host(host)
        for address in addresses:
            if (network := self.deny.match_address(address)) is not None:
                raise RefusedByPolicy(host, str(address), f"address is in denied {network}")
        if not self.allow or self.allow.match_name(name) is not None:
            return
        for address in addresses:
            if self.allow.match_address(address) is None:
                raise RefusedByPolicy(host, str(address), f"neither the host nor the address is in {ENV_ALLOW}")


def normalise_host(host: str) -> str:
    """Lower case, without IPv6 brackets or a trailing dot."""
    return host.strip().strip("[]").rstrip(".").lower()


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an IP address, IPv4-mapped IPv6 (``::ffff:a.b.c.d``) unwrapped to IPv4.

    Unwrapping matters: connecting to ``::ffff:169.254.169.254`` reaches the IPv4 address, so it
    must be checked against the IPv4 rules.
    """
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _network(entry: str) -> IPNetwork:
    network = ipaddress.ip_network(entry, strict=False)
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            # ::ffff:10.0.0.0/104 means 10.0.0.0/8: addresses are unwrapped before matching.
            return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


def _looks_like_host(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return bool(name) and all(
        label and len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label) for label in labels
    )
