"""Plugin discovery and loading: entry points → pluggy.

Entry point groups (the value is a module or object carrying ``@hookimpl`` functions):

- ``waterflow.nodes``: node packages (``waterflow_register_nodes``);
- ``waterflow.cli``: CLI subcommands (``waterflow_register_commands``);
- ``waterflow.providers``: provider packages (the four ``waterflow_register_*`` provider hooks).

Loading is lazy and per group: a group's entry points are scanned and imported the first time a
hook of that group is called, so ``waterflow --help`` never imports node packages. A hook is
answered by the built-in plugin plus the plugins of its own group only, which keeps the answer
independent of what happened to be loaded before.

``WATERFLOW_LOAD_PLUGINS`` restricts which entry points load: a comma-separated list of entry point
names; unset means all, an empty string means none. Built-ins (core's default providers) always
load: they are part of core, not entry points.

Plugins come from the process's own environment only (:func:`plugin_path`): the interpreter's
site-packages, the user site when Python enables it, and ``PYTHONPATH``; never the current
directory, which ``python -m`` puts first on ``sys.path`` and which an agent's steps can write.
``.pth`` files that appear after start-up contribute their directories, but their ``import``
lines are never executed (docs/concepts/security.md).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import site
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from .errors import WaterflowError
from .hookspecs import PROJECT, WaterflowHookSpecs

if TYPE_CHECKING:
    import click

    from .node import Node
    from .providers import Provider

NODES_GROUP = "waterflow.nodes"
CLI_GROUP = "waterflow.cli"
PROVIDERS_GROUP = "waterflow.providers"
ALLOWLIST_ENV = "WATERFLOW_LOAD_PLUGINS"

HOOK_GROUPS: dict[str, str] = {
    "waterflow_register_nodes": NODES_GROUP,
    "waterflow_register_commands": CLI_GROUP,
    "waterflow_register_secret_providers": PROVIDERS_GROUP,
    "waterflow_register_log_handlers": PROVIDERS_GROUP,
    "waterflow_register_event_handlers": PROVIDERS_GROUP,
    "waterflow_register_server_group_providers": PROVIDERS_GROUP,
}

BUILTIN_GROUP = "builtin"
_BUILTIN_MODULES = ("waterflow_core.providers",)

log = logging.getLogger(__name__)
P = TypeVar("P", bound="Provider")
_FROM_ENV: Any = object()


class PluginError(WaterflowError):
    """An installed plugin cannot be used (import error, bad hook, bad class, duplicate node)."""


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin: where it came from (for error messages and the node catalog)."""

    name: str
    group: str
    value: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"entry point {self.name!r} ({self.value}) of {self.distribution} {self.version}"


def allowlist_from_env(environ: Mapping[str, str] = os.environ) -> frozenset[str] | None:
    """Parse ``WATERFLOW_LOAD_PLUGINS``: None (unset) allows all; ``""`` allows none."""
    raw = environ.get(ALLOWLIST_ENV)
    if raw is None:
        return None
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


class PluginManager:
    """Finds, loads and calls Waterflow plugins.

    One instance is one snapshot of what is installed: entry points are read once per group. To
    see packages installed since, take :meth:`fresh`, which re-reads the environment.
    ``strict=False`` logs and skips broken plugins instead of raising :class:`PluginError` (the
    CLI uses it, so one broken plugin cannot take away ``waterflow --help``).
    """

    def __init__(self, *, allowlist: Iterable[str] | None = _FROM_ENV, strict: bool = True) -> None:
        self.allowlist = allowlist_from_env() if allowlist is _FROM_ENV else (
            None if allowlist is None else frozenset(allowlist)
        )
        self.strict = strict
        self.errors: list[str] = []
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(WaterflowHookSpecs)
        self._info: dict[int, PluginInfo] = {}  # id(plugin object) → first info it was loaded by
        self._groups: dict[int, set[str]] = {}  # id(plugin object) → groups it answers for
        self._loaded: set[str] = set()
        for module_name in _BUILTIN_MODULES:
            core = _distribution_version("waterflow-core")
            info = PluginInfo("builtin", BUILTIN_GROUP, module_name, "waterflow-core", core)
            self._register(importlib.import_module(module_name), info)

    def fresh(self) -> PluginManager:
        """A new manager with the same settings that sees the environment as it is now."""
        return PluginManager(allowlist=self.allowlist, strict=self.strict)

    def plugins(self, group: str) -> list[PluginInfo]:
        """The plugins loaded for ``group`` (loads the group if needed)."""
        self._load(group)
        return [self._info[key] for key, groups in self._groups.items() if group in groups]

    def results(self, hook: str) -> list[tuple[PluginInfo, list[Any]]]:
        """Call ``hook`` on each plugin that answers it: ``(plugin, returned list)`` pairs."""
        group = HOOK_GROUPS[hook]
        self._load(group)
        answers: list[tuple[PluginInfo, list[Any]]] = []
        # Called one implementation at a time (not through pluggy's multicall) so that every
        # returned class can be attributed to the distribution that provided it; registration
        # order, so built-ins come first and plugins can override them by name.
        for impl in getattr(self._pm.hook, hook).get_hookimpls():
            key = id(impl.plugin)
            if not self._groups.get(key, set()) & {group, BUILTIN_GROUP}:
                continue
            info = self._info[key]
            try:
                returned = impl.function()
                answers.append((info, list(returned or ())))
            except Exception as exc:  # noqa: BLE001 - a plugin's bug must name the plugin
                self.fail(f"{info}: {hook}() raised {type(exc).__name__}: {exc}", exc)
        return answers

    def nodes(self) -> list[tuple[type[Node], PluginInfo]]:
        """Every node class provided, with the plugin that provided it (unvalidated)."""
        return [(cls, info) for info, classes in self.results("waterflow_register_nodes") for cls in classes]

    def commands(self) -> list[click.Command]:
        """Every CLI command provided by ``waterflow.cli`` plugins."""
        return [cmd for _, cmds in self.results("waterflow_register_commands") for cmd in cmds]

    def provider_classes(self, kind: type[P]) -> dict[str, type[P]]:
        """Provider classes of ``kind`` (e.g. ``SecretProvider``) by name; later plugins win over built-ins."""
        found: dict[str, type[P]] = {}
        for info, classes in self.results(kind.hook):
            for cls in classes:
                if not (isinstance(cls, type) and issubclass(cls, kind)):
                    self.fail(f"{info}: {cls!r} is not a {kind.__name__} subclass")
                    continue
                found[cls.name] = cls
        return found

    # ------------------------------------------------------------------ loading

    def _load(self, group: str) -> None:
        if group in self._loaded:
            return
        self._loaded.add(group)
        for ep in entry_points(group):
            if self.allowlist is not None and ep.name not in self.allowlist:
                continue
            dist = ep.dist
            info = PluginInfo(
                ep.name, group, ep.value, dist.name if dist else "?", dist.version if dist else "?"
            )
            try:
                _forget_if_upgraded(ep, info.version)
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - any import failure is reported with the plugin's name
                self.fail(f"{info}: cannot be imported: {type(exc).__name__}: {exc}", exc)
                continue
            self._register(plugin, info)

    def _register(self, plugin: Any, info: PluginInfo) -> None:
        key = id(plugin)
        if key in self._groups:  # the same module behind two entry points: load it once
            self._groups[key].add(info.group)
            return
        try:
            self._pm.register(plugin, name=f"{info.group}:{info.distribution}:{info.name}")
        except Exception as exc:  # noqa: BLE001 - pluggy rejects hookimpls whose arguments do not match the spec
            self.fail(f"{info}: invalid hook implementation: {exc}", exc)
            return
        unknown = [c.name for c in self._pm.get_hookcallers(plugin) or () if not c.has_spec()]
        if unknown:
            self._pm.unregister(plugin)
            self.fail(f"{info}: implements unknown hooks {sorted(unknown)}")
            return
        self._info[key] = info
        self._groups[key] = {info.group}

    def fail(self, message: str, cause: BaseException | None = None) -> None:
        """Report a plugin problem: raise :class:`PluginError` if strict, else log and record it."""
        if self.strict:
            raise PluginError(message) from cause
        log.warning("skipping plugin: %s", message)
        self.errors.append(message)


# ---------------------------------------------------------------------- environment refresh

_pth_seen: set[str] | None = None
_DIST_NAME_SEPARATORS = re.compile(r"[-_.]+")
_loaded_versions: dict[str, str] = {}


def plugin_path() -> list[str]:
    """The directories plugin distributions are discovered in, in ``sys.path`` order.

    The ``sys.path`` entries that are site-packages directories of this interpreter (or venv),
    the user site when Python enabled it, or ``PYTHONPATH`` entries (unless ``-E``/``-I``), except
    ``''`` and the current working directory: that is where ``python -m`` runs from, and what a
    process's children (an agent's steps) can usually write.
    """
    trusted = {_normalized(d) for d in _site_dirs()}
    if not sys.flags.ignore_environment:
        trusted |= {_normalized(d) for d in os.environ.get("PYTHONPATH", "").split(os.pathsep) if d}
    with contextlib.suppress(OSError):  # a deleted working directory
        trusted.discard(_normalized(os.getcwd()))
    entries = (entry for entry in sys.path if entry and os.path.isabs(entry))
    return list(dict.fromkeys(entry for entry in entries if _normalized(entry) in trusted))


def entry_points(group: str) -> list[metadata.EntryPoint]:
    """Entry points of ``group`` installed in :func:`plugin_path` *now* (sorted: stable load order).

    As in :func:`importlib.metadata.entry_points`, the first distribution of a name along the
    path wins, so an older copy further down is not loaded beside it.
    """
    _refresh_import_system()
    seen: set[str] = set()
    found: list[metadata.EntryPoint] = []
    for dist in metadata.distributions(path=plugin_path()):
        name = _DIST_NAME_SEPARATORS.sub("-", dist.name or "").lower()
        if name in seen:
            continue
        seen.add(name)
        found += dist.entry_points.select(group=group)
    return sorted(found, key=lambda ep: (ep.name, ep.value))


def _site_dirs() -> list[str]:
    """The interpreter's own site-packages directories (where installers put packages and ``.pth``)."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if os.path.isdir(d)]


def _normalized(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def _refresh_import_system() -> None:
    """Make packages installed since start-up visible to this process.

    ``importlib.invalidate_caches()`` drops the path finders' directory listings and
    importlib.metadata's path cache, so distributions are read afresh. Editable installs add a
    ``.pth`` file, which Python only reads at start-up: the directories of the ones that appeared
    since are added to ``sys.path`` (:func:`add_pth_directories`).
    """
    global _pth_seen
    importlib.invalidate_caches()
    current = {
        os.path.join(d, name) for d in _site_dirs() for name in os.listdir(d) if name.endswith(".pth")
    }
    if _pth_seen is None:  # first scan: everything present was processed by `site` at start-up
        _pth_seen = current
        return
    for path in sorted(current - _pth_seen):
        add_pth_directories(path)
    _pth_seen |= current
    importlib.invalidate_caches()


def add_pth_directories(pth_file: str) -> list[str]:
    """Append the directories a ``.pth`` file lists to ``sys.path``; return the ones added.

    What :func:`site.addpackage` does, minus executing ``import`` lines: a ``.pth`` file that
    appears while the process runs must not run code in it. Such lines are logged and skipped;
    installers that rely on them (setuptools' editable finders) take effect at the next start.
    """
    site_dir = os.path.dirname(pth_file)
    known = {_normalized(p) for p in sys.path if p}
    added: list[str] = []
    try:
        with open(pth_file, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        log.warning("cannot read %s: %s", pth_file, err)
        return added
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith(("import ", "import\t")):
            log.warning("not executing an import line of %s (new since start-up): %s", pth_file, entry)
            continue
        directory = os.path.join(site_dir, entry)
        if os.path.isdir(directory) and _normalized(directory) not in known:
            sys.path.append(directory)
            known.add(_normalized(directory))
            added.append(directory)
    return added


def _forget_if_upgraded(ep: metadata.EntryPoint, version: str) -> None:
    """Drop a plugin's modules from ``sys.modules`` when its distribution version changed.

    The next import then loads the new code. Classes of the old version stay alive for whoever
    holds them (an older registry generation, an in-flight step): nothing is mutated in place.
    """
    top = ep.module.split(".", 1)[0]
    previous = _loaded_versions.get(top)
    _loaded_versions[top] = version
    if previous is None or previous == version or top not in sys.modules:
        return
    for name in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
        del sys.modules[name]


def _distribution_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "0"
