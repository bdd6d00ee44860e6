"""The activity behind ``strategy.each-server``: a group's servers, from the ServerGroupProvider.

Served by the interpreter worker (it runs in the server process, next to the provider); the
workflow calls it as a local activity, which runs on the worker running the workflow (runs
recorded before ADR 0047 scheduled it as an activity on the same queue). A step
of an each-server instance goes to the server's personal queue, which only its agent polls.
Asked with the group's name (runs recorded before issue 14), the activity answers only the
servers with a live agent (the others are logged, ADR 0032); asked with a
:class:`ServersRequest`, it answers every listed server with its ``live`` flag, and the workflow
makes each server without an agent an instance that fails at once (ADR 0036). Providers whose
servers *are* the live agents (``agents``) skip the check. Each listed server carries the
provider's ``vars`` (``server.vars.*``, bounded), and a request's ``limit`` (the run's
``--limit``) keeps only the servers it matches.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from ..agent_registry import list_agents
from ..limit import GROUP_PREFIX, matches
from ..providers import ServerGroupProvider
from .fanout import SERVERS_ACTIVITY, ListedServer, ServersRequest

log = logging.getLogger(__name__)

MAX_NAMED = 20
"""Servers named in one warning about servers without a live agent."""
MAX_VARS_BYTES = 4096
"""JSON size of one server's ``vars``: they travel in the history with every step of the server
(256 servers x 4 KiB stays far below Temporal's 2 MB payload limit, ADR 0026)."""


async def listed_servers(
    provider: ServerGroupProvider, client: Client | None, group: str, limit: list[str] | None = None
) -> list[ListedServer]:
    """Every server ``provider`` lists for ``group`` (those ``limit`` matches), sorted by name,
    each with its ``live`` flag and ``vars``."""
    variables: dict[str, dict[str, Any]] = {}
    for server in await provider.servers(group):
        name = str(server["name"])
        variables[name] = _checked_vars(provider, name, server.get("vars"))
    if limit is not None:
        groups_of = await _groups_named(provider, limit)
        variables = {n: v for n, v in variables.items() if matches(limit, n, groups_of)}
    names = sorted(variables)
    if provider.lists_live_agents or not names:
        return [ListedServer(name=name, live=True, vars=variables[name]) for name in names]
    if client is None:
        raise RuntimeError(f"server group provider {provider.name!r} needs a Temporal client to find live agents")
    live = {agent.name for agent in await list_agents(client)}
    return [ListedServer(name=name, live=name in live, vars=variables[name]) for name in names]


def _checked_vars(provider: ServerGroupProvider, name: str, value: Any) -> dict[str, Any]:
    """A server's ``vars``: a JSON object of at most MAX_VARS_BYTES, else an error naming it."""
    if value is None:
        return {}
    where = f"server group provider {provider.name!r}: vars of server {name!r}"
    if not isinstance(value, dict):
        raise ApplicationError(f"{where}: expected a mapping, got {type(value).__name__}", non_retryable=True)
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"{where}: not JSON ({exc})", non_retryable=True) from None
    if len(text.encode()) > MAX_VARS_BYTES:
        raise ApplicationError(
            f"{where}: {len(text.encode())} bytes of JSON (at most {MAX_VARS_BYTES})", non_retryable=True
        )
    loaded: dict[str, Any] = json.loads(text)  # plain JSON types only (tuples become lists...)
    return loaded


async def _groups_named(provider: ServerGroupProvider, limit: list[str]) -> dict[str, set[str]]:
    """Group → its server names, for the groups ``group:`` patterns of ``limit`` may name."""
    if not any(p.startswith(GROUP_PREFIX) for p in limit):
        return {}
    return {g: {str(s["name"]) for s in await provider.servers(g)} for g in await provider.groups()}


async def live_servers(provider: ServerGroupProvider, client: Client | None, group: str) -> list[str]:
    """The names of ``group``'s servers that have a live agent, sorted (the others are logged)."""
    listed = await listed_servers(provider, client, group)
    missing = [server.name for server in listed if not server.live]
    if missing:
        shown = ", ".join(missing[:MAX_NAMED]) + (
            f" and {len(missing) - MAX_NAMED} more" if len(missing) > MAX_NAMED else ""
        )
        log.warning(
            "each-server: %d of %d servers of group %r (provider %s) have no live agent and are left out: %s",
            len(missing),
            len(listed),
            group,
            provider.name,
            shown,
        )
    return [server.name for server in listed if server.live]


def servers_activity(provider: ServerGroupProvider, client: Client | None) -> Callable[[Any], Awaitable[list[Any]]]:
    """The activity the workflow calls to list a group's servers (served by the interpreter worker,
    also as the local activity the workflow runs: register it on every worker of ``WaterflowRun``)."""

    @activity.defn(name=SERVERS_ACTIVITY)
    async def servers_of_group(request: str | dict[str, Any]) -> list[Any]:
        if isinstance(request, str):  # a run recorded before issue 14: live names only
            return await live_servers(provider, client, request)
        asked = ServersRequest.model_validate(request)
        listed = await listed_servers(provider, client, asked.group, asked.limit)
        return [s.model_dump(exclude_defaults=True) | {"live": s.live} for s in listed]

    return servers_of_group
