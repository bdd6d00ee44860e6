"""The interpreter's worker, as ``waterflow server`` (and tests) run it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from ..runs import SERVER_TASK_QUEUE
from ..temporal import sandboxed_runner
from .fanout import SERVERS_ACTIVITY
from .workflow import WaterflowRun

ServersOf = Callable[[str], Awaitable[list[str]]]
"""``group -> names of its live agents`` (what ``strategy.each-server`` fans out over)."""


def registry_servers(client: Client) -> ServersOf:
    """The default :data:`ServersOf`: live agents of the registry (``waterflow_core.agent_registry``)."""

    async def servers_of(group: str) -> list[str]:
        from ..agent_registry import list_agents

        return [agent.name for agent in await list_agents(client) if group in agent.groups]

    return servers_of


def servers_activity(servers_of: ServersOf) -> Callable[[str], Awaitable[list[str]]]:
    """The activity the workflow calls to list a group's servers (served by this worker)."""

    @activity.defn(name=SERVERS_ACTIVITY)
    async def servers_of_group(group: str) -> list[str]:
        return sorted(await servers_of(group))

    return servers_of_group


def build_interpreter_worker(
    client: Client,
    task_queue: str = SERVER_TASK_QUEUE,
    *,
    servers_of: ServersOf | None = None,
    activities: Sequence[Callable[..., Any]] = (),
    **kwargs: Any,
) -> Worker:
    """A worker for ``WaterflowRun`` on ``task_queue`` (run it with ``async with`` or ``run()``).

    ``client`` must use Waterflow's data converter (``waterflow_core.temporal.connect``).
    ``servers_of`` answers ``strategy.each-server`` (default: the live agent registry).
    Extra keyword arguments go to :class:`temporalio.worker.Worker`.
    """
    kwargs.setdefault("workflow_runner", sandboxed_runner())
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[WaterflowRun],
        activities=[servers_activity(servers_of or registry_servers(client)), *activities],
        **kwargs,
    )
