"""each-server lists a group's servers with a local activity (ADR 0047).

The provider here counts its calls and can fail a set number of times (or always), so a test
sees the local activity's retries and how its final failure reaches the job.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Harness, job, server_fleet

from waterflow_core.interpreter.fanout import SERVERS_ACTIVITY
from waterflow_core.providers import ServerGroupProvider

RUN = """
name: local-servers
jobs:
  check:
    runs-on: GROUP
    strategy: {each-server: true}
    steps:
      - {id: ok, uses: test/echo, with: {on: $<< server.name >>}}
"""


class Flaky(ServerGroupProvider):
    """``servers`` answers after ``failures`` failed calls (a negative count: never)."""

    name = "flaky"
    lists_live_agents = True

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.failures = 0
        self.calls = 0

    async def servers(self, group: str) -> list[dict[str, Any]]:
        self.calls += 1
        if self.failures < 0 or self.calls <= self.failures:
            raise RuntimeError(f"inventory service unreachable (call {self.calls})")
        return [{"name": name} for name in self.names]

    async def groups(self) -> list[str]:
        return []


@pytest.fixture
async def fleet(temporal_client: Client, task_queue: str) -> AsyncIterator[tuple[Harness, Flaky]]:
    prefix = f"srv-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-{n}" for n in (1, 2)]
    provider = Flaky(names)
    async with server_fleet(temporal_client, task_queue, provider, names) as h:
        yield h, provider


async def _events(h: Harness, workflow_id: str) -> list[Any]:
    history = await h.client.get_workflow_handle(workflow_id).fetch_history()
    return list(history.events)


async def test_servers_are_listed_by_a_local_activity_a_marker_in_the_history(
    fleet: tuple[Harness, Flaky],
) -> None:
    h, provider = fleet
    handle = await h.start(RUN.replace("GROUP", h.queue))
    _, error = await h.finish(handle, record="each_server_local")
    assert error is None, error
    assert sorted(c.activity_id for c in h.nodes.calls) == [f"check/ok#{n}" for n in provider.names]
    assert provider.calls == 1
    events = await _events(h, handle.id)
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert SERVERS_ACTIVITY not in scheduled
    assert scheduled == ["test/echo", "test/echo"]
    markers = [e for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    local = [m for m in markers if m.marker_recorded_event_attributes.marker_name == "core_local_activity"]
    assert len(local) == 1
    assert SERVERS_ACTIVITY.encode() in local[0].marker_recorded_event_attributes.SerializeToString()


async def test_waiting_for_agents_adds_one_marker_per_look(fleet: tuple[Harness, Flaky]) -> None:
    h, provider = fleet
    names, provider.names = provider.names, []
    handle = await h.start(
        RUN.replace("GROUP", h.queue).replace("each-server: true", "each-server: true, wait-for-agents: 60s")
    )
    while provider.calls < 2:  # the run looked, found no agent, waited and looked again
        await asyncio.sleep(0.1)
    provider.names = names
    progress, error = await h.finish(handle, record="each_server_local_wait")
    assert error is None, error
    assert [j.status for j in progress.jobs if j.instance] == ["success", "success"]
    events = await _events(h, handle.id)
    local = [
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    assert len(local) == provider.calls >= 3
    timers = [e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    assert len(timers) == provider.calls - 1  # one wait between two looks, nothing else grows
    scheduled = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert len(scheduled) == len(names)  # the steps only


async def test_a_provider_that_fails_twice_is_retried_within_the_local_activity(
    fleet: tuple[Harness, Flaky],
) -> None:
    h, provider = fleet
    provider.failures = 2
    progress, error = await h.run(RUN.replace("GROUP", h.queue))
    assert error is None, error
    assert provider.calls == 3
    assert [j.status for j in progress.jobs if j.instance] == ["success", "success"]


async def test_a_provider_that_keeps_failing_fails_the_job_after_five_attempts_saying_why(
    fleet: tuple[Harness, Flaky],
) -> None:
    h, provider = fleet
    provider.failures = -1
    progress, error = await h.run(RUN.replace("GROUP", h.queue))
    assert isinstance(error, ApplicationError)
    assert provider.calls == 5
    assert job(progress, "check").error == (
        f"job check: each-server: cannot list the servers of group '{h.queue}': inventory service unreachable (call 5)"
    )
