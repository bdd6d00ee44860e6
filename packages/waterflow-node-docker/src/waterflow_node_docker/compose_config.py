"""What the resolved compose configuration (``compose config``) says about its services."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from .engine import Engine
from .errors import bad_input


@dataclass(frozen=True)
class Service:
    """One service of the configuration."""

    name: str
    image: str | None
    builds: bool
    depends_on: tuple[str, ...]
    profiles: tuple[str, ...]


def parse_services(text: str) -> dict[str, Service]:
    """The services of ``compose config`` output (YAML, interpolated and normalised by compose)."""
    document = yaml.safe_load(text) or {}
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        return {}
    parsed: dict[str, Service] = {}
    for name, body in services.items():
        spec: Mapping[str, Any] = body if isinstance(body, dict) else {}
        depends = spec.get("depends_on") or ()  # a list, or a map of service -> condition
        parsed[str(name)] = Service(
            name=str(name),
            image=str(spec["image"]) if spec.get("image") else None,
            builds="build" in spec,
            depends_on=tuple(str(d) for d in depends),
            profiles=tuple(str(p) for p in spec.get("profiles") or ()),
        )
    return parsed


def selected(services: Mapping[str, Service], requested: Iterable[str], active_profiles: Iterable[str]) -> list[str]:
    """The services ``up`` starts: those requested plus what they depend on, in name order.

    With none requested: every service without a profile or with an active one (compose's rule).
    Raises a non-retryable error naming an unknown requested service.
    """
    wanted = list(requested)
    unknown = [name for name in wanted if name not in services]
    if unknown:
        known = ", ".join(sorted(services))
        raise bad_input(f"no service {', '.join(map(repr, unknown))} in the compose file; its services: {known}")
    if not wanted:
        profiles = set(active_profiles)
        wanted = [s.name for s in services.values() if not s.profiles or profiles & set(s.profiles)]
    closure: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name not in closure and name in services:
            closure.add(name)
            wanted.extend(services[name].depends_on)
    return sorted(closure)


async def missing_images(engine: Engine, services: Iterable[Service]) -> list[str]:
    """``service (image)`` for each service whose image is not on the daemon and cannot be built."""
    missing = []
    for service in services:
        if service.image is None or service.builds:
            continue
        if await engine.inspect("/images/{}/json", service.image) is None:
            missing.append(f"{service.name} ({service.image})")
    return missing
