"""What nodes exist: the ones installed next to the server plus the ones live agents announce.

The server validates ``with:`` against a node's input schema when the node is installed in its
own environment; a node only agents have is known by type and version (agents announce no
schemas), so its ``with:`` is checked on the agent at run time. A type nobody provides is an
error at submit time: it is almost always a typo, and a run would only wait for it forever.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client

from waterflow_core.agent_registry import AgentInfo, list_agents
from waterflow_core.dsl import WithProblem, Workflow
from waterflow_core.registry import NodeRegistry, UnknownNodeError, unknown_node_message

from .models import NodeEntry

log = logging.getLogger(__name__)

AGENTS_TIMEOUT = 5.0
"""Seconds the agent listing may take; past it the last known list is used (Temporal unreachable)."""

_USES_RE = re.compile(r"(?P<type>[^@\s]+)(?:@(?P<major>\d+))?")


def load_local_registry() -> NodeRegistry | None:
    """The registry of nodes installed in the server's environment (``None`` if it cannot load)."""
    try:
        from waterflow_core.plugins import PluginManager

        return NodeRegistry.from_plugins(PluginManager(strict=False))
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the API
        log.warning("node registry unavailable: %s", exc)
        return None


def _major(version: str) -> int:
    try:
        return int(version.split(".", 1)[0])
    except ValueError:
        return 0


def _agent_types(agents: Sequence[AgentInfo]) -> dict[str, set[int]]:
    types: dict[str, set[int]] = {}
    for agent in agents:
        for node in agent.nodes:
            types.setdefault(node.type, set()).add(_major(node.version))
    return types


class NodeCheck:
    """A ``load_workflow`` node checker over the local registry and the agents' catalogs.

    ``unknown`` collects the ``uses`` that no one provides (:class:`UnknownNodeError`, code
    ``WaterflowUnknownNode``), so a caller can tell "no such node, perhaps not yet" from any
    other problem without reading messages.
    """

    def __init__(self, registry: NodeRegistry | None, agents: Sequence[AgentInfo]) -> None:
        self._registry = registry
        self._remote = _agent_types(agents)
        self.unknown: list[str] = []

    def __call__(self, uses: str, with_data: dict[str, Any]) -> list[WithProblem]:
        """Problems of one step's ``uses`` and ``with:`` (the ``NodeChecker`` protocol)."""
        match = _USES_RE.fullmatch(uses.strip())
        if match is None:
            return [WithProblem((), f"invalid node reference {uses!r}", on="uses")]
        try:
            return self._check(uses, match["type"], match["major"], with_data)
        except UnknownNodeError as exc:
            self.unknown.append(uses)
            return [WithProblem((), str(exc), on="uses")]

    def _check(self, uses: str, node_type: str, major: str | None, with_data: dict[str, Any]) -> list[WithProblem]:
        if self._registry is not None and uses in self._registry:
            return self._registry.check_with(uses, with_data)
        # Not installed here: perhaps an agent has it (its with: is then checked on the agent).
        majors = self._remote.get(node_type)
        if majors is None:
            # Only the types: the registry's catalog() would build every node's JSON schema.
            local = {node.type for node in self._registry} if self._registry is not None else set()
            raise UnknownNodeError(unknown_node_message(node_type, local | set(self._remote)))
        if major is not None and int(major) not in majors:
            have = ", ".join(f"@{m}" for m in sorted(majors))
            raise UnknownNodeError(f"no agent provides {node_type}@{major} (agents have {have})")
        return []


def unchecked_types(workflow: Workflow, registry: NodeRegistry | None) -> list[str]:
    """The ``uses`` of ``workflow`` the server has not installed: only an agent can check their ``with:``."""
    found = {
        target.uses
        for job in workflow.jobs.values()
        for step in job.steps
        for target in (step, step.compensate)
        if target is not None and (registry is None or target.uses not in registry)
    }
    return sorted(found)


def node_checker(registry: NodeRegistry | None, agents: Sequence[AgentInfo]) -> NodeCheck:
    """A node checker over what the server has installed and what ``agents`` announce."""
    return NodeCheck(registry, agents)


def catalog(registry: NodeRegistry | None, agents: Sequence[AgentInfo]) -> list[NodeEntry]:
    """Every (type, major) known, with schemas where the server has the node installed, and the
    agents (and their groups) that provide it."""
    entries: dict[tuple[str, int], NodeEntry] = {}
    if registry is not None:
        for item in registry.catalog():
            key = (item["type"], _major(item["version"]))
            entries[key] = NodeEntry(
                type=item["type"],
                version=item["version"],
                description=item.get("description", ""),
                workflow_side=bool(item.get("workflow_side")),
                inputs_schema=item.get("inputs_schema"),
                outputs_schema=item.get("outputs_schema"),
            )
    for agent in agents:
        for node in agent.nodes:
            key = (node.type, _major(node.version))
            entry = entries.get(key)
            if entry is None:
                entry = entries[key] = NodeEntry(
                    type=node.type, version=node.version, description=node.description
                )
            if agent.name not in entry.agents:
                entry.agents.append(agent.name)
            entry.groups.extend(group for group in agent.groups if group not in entry.groups)
    for entry in entries.values():
        entry.agents.sort()
        entry.groups.sort()
    return [entries[key] for key in sorted(entries)]


class NodeDirectory:
    """The server's node knowledge: its own registry (loaded once) and the agents (cached briefly)."""

    def __init__(self, client: Client | None, *, agents_ttl: float = 5.0) -> None:
        self._client = client
        self._registry: NodeRegistry | None = None
        self._registry_loaded = False
        self._agents: list[AgentInfo] = []
        self._agents_at = float("-inf")
        self._agents_ttl = agents_ttl
        self._lock = asyncio.Lock()
        self._registry_lock = asyncio.Lock()

    async def registry(self) -> NodeRegistry | None:
        """The local registry (plugin imports run in a thread the first time)."""
        if not self._registry_loaded:
            # Requests arriving together at start-up wait for one load instead of each importing.
            async with self._registry_lock:
                if not self._registry_loaded:
                    self._registry = await asyncio.to_thread(load_local_registry)
                    self._registry_loaded = True
        return self._registry

    async def agents(self, *, refresh: bool = False) -> list[AgentInfo]:
        """Live agents; the last answer is reused for ``agents_ttl`` seconds unless ``refresh``."""
        if self._client is None:
            return []
        async with self._lock:
            fresh = time.monotonic() - self._agents_at < self._agents_ttl
            if refresh or not fresh:
                try:
                    self._agents = await asyncio.wait_for(list_agents(self._client), AGENTS_TIMEOUT)
                except Exception as exc:  # noqa: BLE001 - keep the last known list
                    log.warning("cannot list agents: %s", exc or type(exc).__name__)
                # Also after a failure: requests queued behind the lock use the last known list
                # instead of each waiting for an unreachable Temporal in turn.
                self._agents_at = time.monotonic()
            return list(self._agents)

    async def checker(self, *, refresh: bool = False) -> NodeCheck:
        """A node checker over what is known now."""
        return node_checker(await self.registry(), await self.agents(refresh=refresh))

    async def unchecked(self, workflow: Workflow) -> list[str]:
        """:func:`unchecked_types` of ``workflow`` over the server's own registry."""
        return unchecked_types(workflow, await self.registry())

    async def catalog(self) -> list[NodeEntry]:
        """``GET /v1/nodes``."""
        return catalog(await self.registry(), await self.agents(refresh=True))
