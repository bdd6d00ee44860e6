"""each-server that ops can trust (ADR 0028): it waits for a group's agents, finishes every server.

Agents are in-process workers on their personal queues; the group's live agents are what the
harness's ``servers`` answers, so a test decides when an agent "appears".
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Harness, activity_worker, harness, job, step


@pytest.fixture
async def h(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    async for running in harness(temporal_client, task_queue):
        yield running


def servers(count: int) -> list[str]:
    prefix = f"srv-{uuid.uuid4().hex[:6]}"
    return [f"{prefix}-{n}" for n in range(1, count + 1)]


CHECK = """
name: each-server-check
jobs:
  check:
    runs-on: QUEUE
    strategy: {each-server: true STRATEGY}
    steps:
      - id: probe
        uses: test/fail
        if: server.name == 'BAD'
        with: {message: disk full}
      - {id: ok, uses: test/echo, with: {on: $<< server.name >>, sleep: '0.5'}}
"""


async def test_each_server_finishes_every_server_and_names_the_failed_one(
    h: Harness, temporal_client: Client
) -> None:
    names = servers(3)
    h.servers[h.queue] = names
    async with AsyncExitStack() as stack:
        for name in names:
            await stack.enter_async_context(activity_worker(temporal_client, f"agent:{name}", h.nodes))
        progress, error = await h.run(
            CHECK.replace("BAD", names[0]).replace(" STRATEGY", ""), record="each_server_finish_all"
        )
    assert isinstance(error, ApplicationError)
    assert [(j.instance, j.status) for j in progress.jobs if j.instance] == [
        (names[0], "failure"),
        (names[1], "success"),
        (names[2], "success"),
    ]
    assert sorted(c.activity_id for c in h.nodes.calls if c.outcome == "success") == [
        f"check/ok#{names[1]}",
        f"check/ok#{names[2]}",
    ]
    assert error.message.startswith(f"job check failed on 1 of 3 servers ({names[0]}): "), error.message
    assert f"step check/probe#{names[0]} failed: disk full" in error.message
    assert step(progress, "check", "ok", names[0]).status == "skipped"


async def test_each_server_fail_fast_true_still_cancels_the_others(h: Harness, temporal_client: Client) -> None:
    names = servers(3)
    h.servers[h.queue] = names
    text = CHECK.replace("BAD", names[0]).replace(" STRATEGY", ", fail-fast: true")
    text = text.replace("sleep: '0.5'", "sleep: '30'")
    async with AsyncExitStack() as stack:
        for name in names:
            await stack.enter_async_context(activity_worker(temporal_client, f"agent:{name}", h.nodes))
        progress, error = await h.run(text)
    assert isinstance(error, ApplicationError)
    statuses = {j.instance: j.status for j in progress.jobs if j.instance}
    assert statuses[names[0]] == "failure"
    assert {statuses[names[1]], statuses[names[2]]} == {"cancelled"}
    assert job(progress, "check").status == "failure"


async def test_each_server_waits_for_agents_that_are_not_listed_yet(h: Harness, temporal_client: Client) -> None:
    (name,) = servers(1)
    async with activity_worker(temporal_client, f"agent:{name}", h.nodes):
        handle = await h.start(CHECK.replace("BAD", "none").replace(" STRATEGY", ", wait-for-agents: 60s"))
        await asyncio.sleep(1)  # the run is waiting: its group has no live agent yet
        assert not h.nodes.calls
        h.servers[h.queue] = [name]
        progress, error = await h.finish(handle, record="each_server_wait")
    assert error is None, error
    assert [c.activity_id for c in h.nodes.calls] == [f"check/ok#{name}"]
    assert job(progress, "check", name).status == "success"


async def test_wait_for_agents_without_each_server_is_refused() -> None:
    from waterflow_core.dsl import load_workflow
    from waterflow_core.errors import WorkflowValidationError

    text = """
name: w
jobs:
  j:
    runs-on: g
    strategy: {matrix: {n: [1]}, wait-for-agents: 10s}
    steps: [{uses: exec/shell, with: {command: 'true'}}]
"""
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(text)
    assert "wait-for-agents applies to each-server only" in str(caught.value)


async def test_a_failing_server_group_provider_fails_the_job_saying_why(h: Harness) -> None:
    workflow = CHECK.replace("runs-on: QUEUE", f"runs-on: {h.queue}-broken").replace(" STRATEGY", "")
    progress, error = await h.run(workflow)
    assert isinstance(error, ApplicationError)
    assert job(progress, "check").error == (
        f"job check: each-server: cannot list the servers of group '{h.queue}-broken': "
        f"inventory of {h.queue}-broken cannot be read"
    )
