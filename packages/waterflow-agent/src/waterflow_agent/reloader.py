"""Hot reload of the node registry.

Every ``interval`` the agent compares the installed ``waterflow.nodes`` entry points (with their
distributions' versions) to what it saw last; on a difference it builds the next registry
generation and swaps it in. Steps already running keep the class they started with; the next
step sees the new generation. Polling importlib.metadata (rather than watching files) catches
every installer (pip, uv, editable installs, a package dropped on ``PYTHONPATH``) the same way.

Reading every distribution's metadata costs milliseconds, too much once a second on a host that
runs many agents. Installers add and remove ``*.dist-info`` directories (never rewrite them in
place), which changes the modification time of the ``sys.path`` directory holding them; so the
metadata is read only for ``SETTLE`` seconds after one of those times changed (installers write
a distribution's files over a moment), and at least every ``FULL_SCAN_EVERY`` seconds as a
safety net.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata as metadata
import logging
import os
import sys
from collections.abc import Callable

from waterflow_core.agent_registry import NodeInfo
from waterflow_core.plugins import NODES_GROUP, PluginManager
from waterflow_core.registry import NodeRegistry

log = logging.getLogger(__name__)

Fingerprint = frozenset[tuple[str, str, str, str]]
PathStamp = tuple[tuple[str, int | None], ...]

FULL_SCAN_EVERY = 60.0
SETTLE = 5.0


def path_stamp() -> PathStamp:
    """Modification times of the ``sys.path`` entries: cheap evidence that nothing was installed."""
    stamp: list[tuple[str, int | None]] = []
    for entry in sys.path:
        try:
            stamp.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            stamp.append((entry, None))
    return tuple(stamp)


def installed_nodes() -> Fingerprint:
    """What decides whether the registry is stale: entry point name, target, distribution, version."""
    # Drop cached directory listings so a distribution installed a moment ago is seen even when
    # the directory's mtime did not visibly change (coarse timestamps on some filesystems).
    importlib.invalidate_caches()
    return frozenset(
        (ep.name, ep.value, ep.dist.name if ep.dist else "", ep.dist.version if ep.dist else "")
        for ep in metadata.entry_points(group=NODES_GROUP)
    )


def build_registry() -> NodeRegistry:
    """The first generation. ``strict=False``: a broken plugin is logged, the others still serve."""
    return NodeRegistry.from_plugins(PluginManager(strict=False))


def node_catalog(registry: NodeRegistry) -> list[NodeInfo]:
    """The activity-side nodes of ``registry``, as an agent publishes them."""
    catalog: list[NodeInfo] = []
    for cls in registry:
        if cls.workflow_side:
            continue
        plugin = registry.entry(f"{cls.type}@{cls.major()}").plugin
        catalog.append(
            NodeInfo(
                type=cls.type,
                version=cls.version,
                description=cls.description,
                distribution=plugin.distribution,
                distribution_version=plugin.version,
            )
        )
    return catalog


class RegistryHolder:
    """The current registry generation; swapping it is one assignment."""

    def __init__(self, registry: NodeRegistry, fingerprint: Fingerprint) -> None:
        self.current = registry
        self.fingerprint = fingerprint
        self._listeners: list[Callable[[NodeRegistry], None]] = []

    def on_swap(self, listener: Callable[[NodeRegistry], None]) -> None:
        """Call ``listener`` with each new generation."""
        self._listeners.append(listener)

    def swap(self, registry: NodeRegistry, fingerprint: Fingerprint) -> None:
        """Make ``registry`` current and tell the listeners."""
        self.current = registry
        self.fingerprint = fingerprint
        for listener in self._listeners:
            listener(registry)

    @classmethod
    async def load(cls) -> RegistryHolder:
        """Build the first generation (off the event loop: it imports every node package)."""
        fingerprint = await asyncio.to_thread(installed_nodes)
        registry = await asyncio.to_thread(build_registry)
        return cls(registry, fingerprint)

    async def watch(self, interval: float) -> None:
        """Poll for installs, upgrades and removals forever, swapping generations as they happen."""
        loop = asyncio.get_running_loop()
        # No stamp yet: the first rounds scan, covering installs since the registry was built.
        stamp: PathStamp | None = None
        settle_until = 0.0
        next_full_scan = loop.time() + FULL_SCAN_EVERY
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            previous, stamp = stamp, path_stamp()
            if stamp != previous:
                # An installer creates the dist-info directory before writing into it: keep
                # scanning for a while so metadata written after this moment is still seen.
                settle_until = now + SETTLE
            if now > settle_until and now < next_full_scan:
                continue
            next_full_scan = now + FULL_SCAN_EVERY
            try:
                fingerprint = await asyncio.to_thread(installed_nodes)
            except Exception:  # a half-written dist-info; look again next time
                log.debug("could not read installed node packages", exc_info=True)
                continue
            if fingerprint == self.fingerprint:
                continue
            try:
                registry = await asyncio.to_thread(self.current.rebuild)
            except Exception:  # keep serving the old generation
                log.exception("node packages changed but the registry could not be rebuilt")
                # Remember the failed state: retrying every second would only repeat the error
                # until the environment changes again.
                self.fingerprint = fingerprint
                continue
            self.swap(registry, fingerprint)
            log.info(
                "node registry generation %d: %s",
                registry.generation,
                ", ".join(f"{n.type}@{n.version}" for n in node_catalog(registry)) or "no nodes",
            )
