"""The activity behind ``strategy.each-server``: a group's servers, from the ServerGroupProvider.

Served by the interpreter worker (it runs in the server process, next to the provider). A step
of an each-server instance goes to the server's personal queue, which only its agent polls; a
server without a live agent would leave that step waiting for ever, so servers the provider
lists are kept only while a live agent of that name is registered (ADR 0032). Providers whose
servers *are* the live agents (``agents``) skip that check.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.client import Client

from ..agent_registry import list_agents
from ..providers import ServerGroupProvider
from .fanout import SERVERS_ACTIVITY

log = logging.getLogger(__name__)

MAX_NAMED = 20
"""Servers named in one warning about servers without a live agent."""


async def live_servers(provider: ServerGroupProvider, client: Client | None, group: str) -> list[str]:
    """The names of ``group``'s servers that have a live agent, sorted."""
    names = sorted({str(server["name"]) for server in await provider.servers(group)})
    if provider.lists_live_agents or not names:
        return names
    if client is None:
        raise RuntimeError(f"server group provider {provider.name!r} needs a Temporal client to find live agents")
    live = {agent.name for agent in await list_agents(client)}
    missing = [name for name in names if name not in live]
    if missing:
        shown = ", ".join(missing[:MAX_NAMED]) + (
            f" and {len(missing) - MAX_NAMED} more" if len(missing) > MAX_NAMED else ""
        )
        log.warning(
            "each-server: %d of %d servers of group %r (provider %s) have no live agent and are left out: %s",
            len(missing),
            len(names),
            group,
            provider.name,
            shown,
        )
    return [name for name in names if name in live]


def servers_activity(provider: ServerGroupProvider, client: Client | None) -> Callable[[str], Awaitable[list[str]]]:
    """The activity the workflow calls to list a group's servers (served by the interpreter worker)."""

    @activity.defn(name=SERVERS_ACTIVITY)
    async def servers_of_group(group: str) -> list[str]:
        return await live_servers(provider, client, group)

    return servers_of_group
