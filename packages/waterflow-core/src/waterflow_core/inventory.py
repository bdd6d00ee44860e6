"""The ``inventory`` server group provider: groups and servers from a static YAML file (ADR 0032).

```
groups:
  web: [web-1, web-2]
  db:
    - db-1
servers:              # optional: per-server settings
  web-1:
    vars: {region: eu-west}
```

The file is read with the workflow loader's strict YAML rules (every scalar is text) and checked
as a whole; every problem is reported with its ``file:line:column``. A server's ``vars`` (JSON
values, at most 4 KiB of JSON per server) are ``server.vars.*`` in the expressions of its
each-server instances.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .dsl.strict_yaml import Path as YamlPath
from .dsl.strict_yaml import YamlDocument, load_strict_yaml
from .errors import ErrorItem, WorkflowValidationError, format_path
from .providers import ServerGroupProvider

__all__ = ["Inventory", "InventoryError", "InventoryServer", "InventoryServerGroupProvider", "parse_inventory"]

log = logging.getLogger(__name__)

# Names become task queues and workflow ids (an agent's personal queue is ``agent:<name>``).
_NAME = re.compile(r"[^\s/]+")
_TOP_KEYS = ("groups", "servers")
_SERVER_KEYS = ("vars",)


class InventoryError(WorkflowValidationError):
    """The inventory file is invalid; ``errors`` lists each problem with its line and column."""


@dataclass(frozen=True)
class InventoryServer:
    """One server of the inventory: its name (the agent's name) and its variables."""

    name: str
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inventory:
    """Group name → server names (in file order), and every server named anywhere."""

    groups: dict[str, list[str]]
    servers: dict[str, InventoryServer]


def parse_inventory(text: str | bytes, source: str | None = None) -> Inventory:
    """Parse and check an inventory; raises :class:`InventoryError` listing every problem."""
    try:
        doc = load_strict_yaml(text, source=source)
    except WorkflowValidationError as exc:
        raise InventoryError(exc.errors, source=source) from None
    problems: list[ErrorItem] = []

    def problem(path: YamlPath, message: str, *, key: bool = False) -> None:
        where = doc.key_position(path) if key else doc.value_position(path)
        problems.append(ErrorItem(line=where.line, column=where.column, path=format_path(path), message=message))

    data = doc.data
    if not isinstance(data, dict):
        problem((), "an inventory is a mapping with a 'groups' key")
        raise InventoryError(problems, source=source)
    for key in data:
        if key not in _TOP_KEYS:
            problem((key,), f"unknown key {key!r} (expected {' or '.join(_TOP_KEYS)})", key=True)
    groups = _groups(doc, problem)
    servers = _servers(doc, problem)
    grouped = {name for names in groups.values() for name in names}
    for name in servers:
        if name not in grouped:
            problem(("servers", name), f"server {name!r} is in no group (a typo?)", key=True)
    if problems:
        raise InventoryError(problems, source=source)
    for name in grouped:
        servers.setdefault(name, InventoryServer(name))
    return Inventory(groups=groups, servers=servers)


def _groups(doc: YamlDocument, problem: Any) -> dict[str, list[str]]:
    raw = doc.data.get("groups")
    if "groups" not in doc.data:
        problem((), "missing key 'groups' (group name: [server names])")
        return {}
    if not isinstance(raw, dict):
        problem(("groups",), "expected a mapping of group name to a list of server names")
        return {}
    groups: dict[str, list[str]] = {}
    for group, members in raw.items():
        path: YamlPath = ("groups", group)
        if not _NAME.fullmatch(group):
            problem(path, "a group name must not be empty or contain whitespace or '/'", key=True)
        if not isinstance(members, list):
            problem(path, "expected a list of server names")
            continue
        names: list[str] = []
        for index, name in enumerate(members):
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                problem((*path, index), "a server name is text without whitespace or '/'")
            elif name in names:
                problem((*path, index), f"server {name!r} is listed twice in group {group!r}")
            else:
                names.append(name)
        groups[group] = names
    return groups


def _servers(doc: YamlDocument, problem: Any) -> dict[str, InventoryServer]:
    raw = doc.data.get("servers", {})
    if raw == "":  # `servers:` with nothing after it
        return {}
    if not isinstance(raw, dict):
        problem(("servers",), "expected a mapping of server name to its settings")
        return {}
    servers: dict[str, InventoryServer] = {}
    for name, written in raw.items():
        path: YamlPath = ("servers", name)
        if not _NAME.fullmatch(name):
            problem(path, "a server name must not be empty or contain whitespace or '/'", key=True)
            continue
        settings = {} if written == "" else written
        if not isinstance(settings, dict):
            problem(path, "expected a mapping (vars: {...})")
            continue
        for key in settings:
            if key not in _SERVER_KEYS:
                problem((*path, key), f"unknown key {key!r} (expected vars)", key=True)
        variables = settings.get("vars", {})
        if variables == "":
            variables = {}
        if not isinstance(variables, dict):
            problem((*path, "vars"), "expected a mapping of variable name to value")
            continue
        servers[name] = InventoryServer(name, variables)
    return servers


def load_inventory(path: Path) -> Inventory:
    """Read and parse the inventory file at ``path`` (:class:`InventoryError` names the file)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise InventoryError(
            [ErrorItem(line=1, column=1, path="", message=f"cannot read the inventory: {exc.strerror or exc}")],
            source=str(path),
        ) from None
    return parse_inventory(text, source=str(path))


class InventoryServerGroupProvider(ServerGroupProvider):
    """Servers of a group = the servers the inventory file lists for it.

    The file is read when the provider is built (an invalid file stops the server at start-up)
    and again whenever it changes; a changed file that does not load is logged and the last
    valid one stays in use.
    """

    name = "inventory"

    class Options(ServerGroupProvider.Options):
        path: Path = Field(description="The inventory file (YAML).")

    options: Options

    def __init__(self, options: BaseModel | Any = None, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self._stamp = _stamp(self.options.path)
        self.inventory = load_inventory(self.options.path)

    async def servers(self, group: str) -> list[dict[str, Any]]:
        inventory = self._current()
        return [{"name": name, "vars": dict(inventory.servers[name].vars)} for name in inventory.groups.get(group, [])]

    async def groups(self) -> list[str]:
        return sorted(self._current().groups)

    def _current(self) -> Inventory:
        stamp = _stamp(self.options.path)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.inventory = load_inventory(self.options.path)
            except InventoryError as exc:
                log.error("inventory not reloaded, the previous one stays in use:\n%s", exc)
        return self.inventory


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
