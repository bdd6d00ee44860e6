"""The activity behind ``strategy.each-server``: a group's servers, from the ServerGroupProvider.

Served by the interpreter worker (it runs in the server process, next to the provider). A step
of an each-server instance goes to the server's personal queue, which only its agent polls.
Asked with the group's name (runs recorded before issue 14), the activity answers only the
servers with a live agent (the others are logged, ADR 0032); asked with a
:class:`ServersRequest`, it answers every listed server with its ``live`` flag, and the workflow
makes each server without an agent an instance that fails at once (ADR 0036). Providers whose
servers *are* the live agents (``agents``) skip the check.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.client import Client

from ..agent_registry import list_agents
from ..providers import ServerGroupProvider
from .fanout import SERVERS_ACTIVITY, ListedServer, ServersRequest

log = logging.getLogger(__name__)

MAX_NAMED = 20
"""Servers named in one warning about servers without a live agent."""


async def listed_servers(provider: ServerGroupProvider, client: Client | None, group: str) -> list[ListedServer]:
    """Every server ``provider`` lists for ``group``, sorted by name, each with its ``live`` flag."""
    names = sorted({str(server["name"]) for server in await provider.servers(group)})
    if provider.lists_live_agents or not names:
        return [ListedServer(name=name, live=True) for name in names]
    if client is None:
        raise RuntimeError(f"server group provider {provider.name!r} needs a Temporal client to find live agents")
    live = {agent.name for agent in await list_agents(client)}
    return [ListedServer(name=name, live=name in live) for name in names]


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
    """The activity the workflow calls to list a group's servers (served by the interpreter worker)."""

    @activity.defn(name=SERVERS_ACTIVITY)
    async def servers_of_group(request: str | dict[str, Any]) -> list[Any]:
        if isinstance(request, str):  # a run recorded before issue 14: live names only
            return await live_servers(provider, client, request)
        asked = ServersRequest.model_validate(request)
        return [s.model_dump() for s in await listed_servers(provider, client, asked.group)]

    return servers_of_group
