"""The live agent registry workflow, driven directly (the agent tests cover the real agent)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from waterflow_core.agent_registry import (
    AgentInfo,
    AgentRegistryWorkflow,
    NodeInfo,
    agent_workflow_id,
    announce,
    describe_agent,
    list_agents,
    personal_queue,
    withdraw,
)
from waterflow_core.temporal import sandboxed_runner
from waterflow_testing import eventually


def _info(name: str, **update: object) -> AgentInfo:
    return AgentInfo(
        name=name,
        groups=["web"],
        nodes=[NodeInfo(type="exec/shell", version="1.0.0")],
        facts={"hostname": "h1"},
        instance=uuid.uuid4().hex,
        heartbeat_interval_seconds=0.5,
    ).model_copy(update=update)


@pytest.fixture
async def agent_name(temporal_client: Client) -> AsyncIterator[str]:
    """An agent name with its registration workflow served in-process."""
    name = f"agent-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal_client,
        task_queue=personal_queue(name),
        workflows=[AgentRegistryWorkflow],
        workflow_runner=sandboxed_runner(),
    ):
        yield name


def _names(agents: list[AgentInfo]) -> set[str]:
    return {a.name for a in agents}


async def test_announced_agent_is_listed_with_its_info(temporal_client: Client, agent_name: str) -> None:
    info = _info(agent_name)
    await announce(temporal_client, info)
    agents = await eventually(lambda: list_agents(temporal_client), lambda a: agent_name in _names(a))
    listed = next(a for a in agents if a.name == agent_name)
    assert listed.groups == ["web"]
    assert listed.nodes[0].type == "exec/shell"
    assert listed.facts == {"hostname": "h1"}
    assert listed.last_seen is not None

    described = await describe_agent(temporal_client, agent_name)
    assert described is not None and described.instance == info.instance
    queried = await temporal_client.get_workflow_handle(agent_workflow_id(agent_name)).query(
        AgentRegistryWorkflow.info
    )
    assert queried is not None and queried.name == agent_name


async def test_changed_catalog_is_published(temporal_client: Client, agent_name: str) -> None:
    info = _info(agent_name)
    await announce(temporal_client, info)
    upgraded = info.model_copy(update={"nodes": [NodeInfo(type="exec/shell", version="2.0.0")]})
    await announce(temporal_client, upgraded)
    await eventually(
        lambda: describe_agent(temporal_client, agent_name),
        lambda a: a is not None and a.nodes[0].version == "2.0.0",
    )


async def test_silent_agent_goes_stale(temporal_client: Client, agent_name: str) -> None:
    await announce(temporal_client, _info(agent_name))
    await eventually(lambda: list_agents(temporal_client), lambda a: agent_name in _names(a))
    # No more heartbeats: after three missed intervals it is no longer live, but still listed
    # with include_stale until its lease runs out.
    await eventually(lambda: list_agents(temporal_client), lambda a: agent_name not in _names(a))
    stale = await list_agents(temporal_client, include_stale=True)
    assert agent_name in _names(stale)


def test_liveness_window_is_three_intervals_and_one_workflow_task_timeout() -> None:
    # The heartbeat's workflow task may time out once (a busy agent or Temporal) and publish
    # last_seen 10 s late; the agent must still count as live, and not a moment longer (issue 12).
    seen = datetime(2026, 12, 1, tzinfo=UTC)
    info = _info("a", heartbeat_interval_seconds=30.0, last_seen=seen)
    assert info.liveness_window() == timedelta(seconds=100)
    assert info.is_alive(seen + timedelta(seconds=100))
    assert not info.is_alive(seen + timedelta(seconds=100, microseconds=1))
    assert not info.model_copy(update={"last_seen": None}).is_alive(seen)


async def test_withdraw_removes_only_the_current_instance(temporal_client: Client, agent_name: str) -> None:
    old, new = _info(agent_name), _info(agent_name)
    await announce(temporal_client, old)
    await announce(temporal_client, new)
    assert not await withdraw(temporal_client, agent_name, old.instance)  # the replaced process
    await eventually(
        lambda: describe_agent(temporal_client, agent_name),
        lambda a: a is not None and a.instance == new.instance,
    )
    assert await withdraw(temporal_client, agent_name, new.instance)
    handle = temporal_client.get_workflow_handle(agent_workflow_id(agent_name))
    await eventually(handle.describe, lambda d: d.status == WorkflowExecutionStatus.COMPLETED)
    assert await describe_agent(temporal_client, agent_name) is None
    assert await withdraw(temporal_client, agent_name, new.instance)  # already gone: done


async def test_lease_is_renewed_by_heartbeats_and_expires_without(
    temporal_client: Client, agent_name: str
) -> None:
    lease = timedelta(seconds=4)
    info = _info(agent_name)
    handle = temporal_client.get_workflow_handle(agent_workflow_id(agent_name))
    await announce(temporal_client, info, lease=lease)
    first_run = (await handle.describe()).run_id

    async def beat_until_renewed() -> str:
        await announce(temporal_client, info, lease=lease)
        await asyncio.sleep(0.3)
        return (await handle.describe()).run_id

    # Heartbeats past half the lease continue the registration as new: same id, new run.
    await eventually(beat_until_renewed, lambda run_id: run_id != first_run)
    assert agent_name in _names(await list_agents(temporal_client, include_stale=True))

    # Silence: the run times out, and the agent disappears even from the stale listing.
    await eventually(
        lambda: list_agents(temporal_client, include_stale=True),
        lambda a: agent_name not in _names(a),
    )
