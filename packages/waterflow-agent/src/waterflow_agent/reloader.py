"""Hot reload of the node registry (ADR 0014).

The agent compares the installed ``waterflow.nodes`` entry points (with their distributions'
versions) to what it saw last; on a difference it builds the next registry generation and swaps
it in. Steps already running keep the class they started with; the next step sees the new
generation. Deciding by importlib.metadata, not by which files changed, treats every installer
(pip, uv, editable installs, a package dropped on ``PYTHONPATH``) the same way.

When it compares:

- After an install or uninstall in a plugin directory (:func:`waterflow_core.plugins.plugin_path`:
  site-packages and ``PYTHONPATH``, never the working directory), seen by watchfiles (inotify): once
  the installer's burst of events has been quiet for ``QUIET_MS`` (grouped for at most
  ``MAX_BATCH_MS``), and once more ``SETTLE`` seconds later. Only the directories themselves are
  watched, not their trees, which keeps an agent to a handful of inotify watches; so files written
  into a new ``*.dist-info`` after it appeared are no events of their own, hence the second look.
- When the watcher cannot start or fails (typically the per-user inotify limits,
  ``fs.inotify.max_user_instances`` / ``max_user_watches``, reached by many agents on one host):
  after a change of a plugin directory's modification time, checked every ``STAT_POLL`` seconds
  (a ``stat`` per directory, no thread, no inotify), once at once and once ``SETTLE`` seconds later.
  Installers create, rename and delete entries directly in these directories, which is what
  changes their modification time: what the non-recursive watch sees, seen a little later.
- Every ``poll_interval`` seconds regardless: the safety net for filesystems that send no
  notifications (NFS, some container mounts) and for plugin directories created after the
  watcher started, and the only trigger when the watcher is disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

from watchfiles import Change, awatch

from waterflow_core.agent_registry import NodeInfo
from waterflow_core.plugins import NODES_GROUP, PluginManager, entry_points, plugin_path
from waterflow_core.registry import NodeRegistry

log = logging.getLogger(__name__)

Fingerprint = frozenset[tuple[str, str, str, str]]

QUIET_MS = 250
MAX_BATCH_MS = 2_000
SETTLE = 1.0
STAT_POLL = 1.0
# What installers create, rename or delete directly in a plugin directory. Package and module
# names are left out: they never change the fingerprint.
INSTALL_SUFFIXES = (".dist-info", ".egg-info", ".pth")


def installed_nodes() -> Fingerprint:
    """What decides whether the registry is stale: entry point name, target, distribution, version.

    Read from the plugin directories only, as the registry itself is (entry_points also drops
    cached directory listings, so a distribution installed a moment ago is seen even when the
    directory's mtime did not visibly change).
    """
    return frozenset(
        (ep.name, ep.value, ep.dist.name if ep.dist else "", ep.dist.version if ep.dist else "")
        for ep in entry_points(NODES_GROUP)
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


def watch_roots() -> list[str]:
    """The plugin directories that exist now, each once."""
    return [root for root in plugin_path() if os.path.isdir(root)]


def directory_times() -> dict[str, tuple[int, int]]:
    """Each plugin directory's identity and modification time (what an install changes)."""
    times: dict[str, tuple[int, int]] = {}
    for root in plugin_path():
        with contextlib.suppress(OSError):  # not there (yet): its appearance is a change too
            st = os.stat(root)
            times[root] = (st.st_ino, st.st_mtime_ns)
    return times


def install_change(_change: Change, path: str) -> bool:
    """watchfiles filter: is this entry of a watched directory one that installers touch?

    Replaces watchfiles' DefaultFilter, which drops every path under a ``.venv`` directory (and,
    in older releases, under any ``site-packages``): exactly where agents are installed.
    """
    return os.path.basename(path).endswith(INSTALL_SUFFIXES)


class RegistryHolder:
    """The current registry generation; swapping it is one assignment."""

    def __init__(self, registry: NodeRegistry, fingerprint: Fingerprint) -> None:
        self.current = registry
        self.fingerprint = fingerprint
        self._listeners: list[Callable[[NodeRegistry], None]] = []
        # The watcher and the poll may both look at once; generations must be built in order.
        self._refreshing = asyncio.Lock()

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

    async def refresh(self) -> None:
        """Re-read the installed node packages; on a change, build and swap in the next generation."""
        async with self._refreshing:
            try:
                fingerprint = await asyncio.to_thread(installed_nodes)
            except Exception:  # a half-written dist-info; the next look sees it whole
                log.debug("could not read installed node packages", exc_info=True)
                return
            if fingerprint == self.fingerprint:
                return
            try:
                registry = await asyncio.to_thread(self.current.rebuild)
            except Exception:  # keep serving the old generation
                log.exception("node packages changed but the registry could not be rebuilt")
                # Remember the failed state: rebuilding on every look would only repeat the error
                # until the environment changes again.
                self.fingerprint = fingerprint
                return
            self.swap(registry, fingerprint)
            log.info(
                "node registry generation %d: %s",
                registry.generation,
                ", ".join(f"{n.type}@{n.version}" for n in node_catalog(registry)) or "no nodes",
            )


class Reloader:
    """Keeps a :class:`RegistryHolder` in step with the installed node packages: watch plus poll."""

    def __init__(self, holder: RegistryHolder, *, poll_interval: float, watch: bool = True) -> None:
        self.holder = holder
        self.poll_interval = poll_interval
        self.watch = watch
        self._second_look: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Watch and poll until cancelled; cancelling also stops the watcher's thread."""
        stop = asyncio.Event()
        watcher = asyncio.create_task(self._watch(stop), name="reload watcher") if self.watch else None
        if watcher is None:
            log.info("node package watcher disabled; polling every %gs", self.poll_interval)
        try:
            # Installs between the first registry build and the watcher's start would otherwise
            # wait for the first poll.
            await self.holder.refresh()
            while True:
                await asyncio.sleep(self.poll_interval)
                await self.holder.refresh()
        finally:
            stop.set()  # the watcher's thread checks it between waits and returns
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)

    async def _watch(self, stop: asyncio.Event) -> None:
        """Refresh after each install the watcher sees; when it cannot watch, after mtime changes."""
        try:
            while not stop.is_set():
                roots = watch_roots()
                log.debug("watching %s for node package changes", ", ".join(roots))
                try:
                    batches = awatch(
                        *roots,
                        watch_filter=install_change,
                        recursive=False,
                        step=QUIET_MS,
                        debounce=MAX_BATCH_MS,
                        stop_event=stop,
                    )
                    async with contextlib.aclosing(batches):
                        async for batch in batches:
                            log.debug("install activity: %s", ", ".join(sorted(path for _, path in batch)))
                            await self._look_twice()
                            if watch_roots() != roots:
                                break  # e.g. a PYTHONPATH directory created since: watch that too
                except Exception as err:  # noqa: BLE001 - e.g. fs.inotify.max_user_instances reached
                    log.warning(
                        "cannot watch the plugin directories for node package changes (%s: %s); checking "
                        "their modification times every %gs instead. Many agents on one host exhaust the "
                        "per-user inotify limits: raise fs.inotify.max_user_instances / max_user_watches "
                        "to watch again",
                        type(err).__name__,
                        err,
                        STAT_POLL,
                    )
                    await self._watch_times(stop)
                    return
        finally:
            if self._second_look is not None:
                self._second_look.cancel()

    async def _watch_times(self, stop: asyncio.Event) -> None:
        """The watcher's stand-in: look twice after a plugin directory's modification time changed."""
        seen = await asyncio.to_thread(directory_times)
        while not stop.is_set():
            await asyncio.sleep(STAT_POLL)
            now = await asyncio.to_thread(directory_times)
            if now != seen:
                seen = now
                await self._look_twice()

    async def _look_twice(self) -> None:
        """Compare now, and once more ``SETTLE`` seconds later beside the watcher (so a batch arriving
        meanwhile is not held up): a new ``*.dist-info`` may still be filling when it is first seen."""
        await self.holder.refresh()
        if self._second_look is not None:
            self._second_look.cancel()
        self._second_look = asyncio.create_task(self._refresh_after(SETTLE), name="reload settle")

    async def _refresh_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.holder.refresh()
