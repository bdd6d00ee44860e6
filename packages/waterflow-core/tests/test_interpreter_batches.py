"""Rolling batches, their failure budget, unreachable servers and the result matrix (ADR 0036).

Servers are in-process workers on their personal queues; the harness's ``servers`` decides the
group's live agents. The unreachable-server test uses a provider that does not list live agents
itself, with agents announced in the real registry.
"""

from __future__ import annotations

import itertools
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from waterflow_core.agent_registry import AgentInfo, AgentRegistryWorkflow, announce, personal_queue, withdraw
from waterflow_core.dsl import load_workflow
from waterflow_core.errors import WorkflowValidationError
from waterflow_core.interpreter import build_interpreter_worker
from waterflow_core.interpreter.batches import batch_sizes, budget_exceeded
from waterflow_core.interpreter.servers import listed_servers
from waterflow_core.matrix import job_matrices
from waterflow_core.providers import ServerGroupProvider
from waterflow_core.temporal import sandboxed_runner
from waterflow_testing import eventually

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Harness, Nodes, activity_worker, harness, job, step


@pytest.fixture
async def h(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    async for running in harness(temporal_client, task_queue):
        yield running


def servers(count: int) -> list[str]:
    """Names that sort in the order they are numbered (each-server sorts its servers by name)."""
    prefix = f"srv-{uuid.uuid4().hex[:6]}"
    return [f"{prefix}-{n:02d}" for n in range(count)]


ROLL = """
name: roll
jobs:
  deploy:
    runs-on: QUEUE
    strategy: {each-server: true, batch: [1, 30%], max-fail-percentage: 20 MORE}
    steps:
      - id: up
        uses: test/fail
        if: contains('BAD', server.name)
        with: {message: health check failed}
      - {id: check, uses: test/echo, with: {on: $<< server.name >>, sleep: '0.2'}}
"""


async def roll(h: Harness, client: Client, names: list[str], bad: list[str], more: str = "", **kw: Any) -> Any:
    h.servers[h.queue] = names
    text = ROLL.replace("BAD", ",".join(bad)).replace(" MORE", more)
    async with AsyncExitStack() as stack:
        for name in names:
            await stack.enter_async_context(activity_worker(client, f"agent:{name}", h.nodes))
        return await h.run(text, **kw)


def batches_by_calls(h: Harness, names: list[str]) -> list[tuple[float, float]]:
    """Each server's first call (start, end of its last call), in server order."""
    out = []
    for name in names:
        calls = [c for c in h.nodes.calls if c.activity_id.endswith(f"#{name}")]
        out.append((min(c.started for c in calls), max(c.ended for c in calls)) if calls else (0.0, 0.0))
    return out


# -- pure rules -------------------------------------------------------------------------------


def test_batch_sizes_follow_ansible_serial() -> None:
    assert batch_sizes([1, "30%"], 10) == [1, 3, 3, 3]
    assert batch_sizes([1, "10%", "25%"], 10) == [1, 1, 2, 2, 2, 2]
    assert batch_sizes(["33%"], 2) == [1, 1]  # 0.66 rounds down to 0, and a batch has at least 1
    assert batch_sizes([5], 3) == [3]
    assert batch_sizes([2, 3], 9) == [2, 3, 3, 1]  # the last entry repeats; the last batch takes the rest
    assert batch_sizes(["100%"], 4) == [4]
    assert batch_sizes(None, 4) == [4]
    assert batch_sizes([1], 0) == []


def test_budget_is_exceeded_not_reached() -> None:
    assert not budget_exceeded(2, 10, 20)  # exactly 20 %: within budget
    assert budget_exceeded(3, 10, 20)
    assert budget_exceeded(1, 1, 20)  # a failed canary is 100 % of what started
    assert budget_exceeded(1, 4, 20)
    assert not budget_exceeded(0, 4, 0)
    assert budget_exceeded(1, 10, 0)  # 0: any failure stops
    assert not budget_exceeded(10, 10, 100)
    assert not budget_exceeded(5, 10, None)


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ("each-server: true, batch: [0]", "5:43: jobs.j.strategy.batch[0]: a batch size is a positive integer"),
        ("each-server: true, batch: [1, 0%]", "5:46: jobs.j.strategy.batch[1]: a batch percentage is more than 0%"),
        ("each-server: true, batch: [101%]", "jobs.j.strategy.batch[0]: a batch percentage is more than 0% and at"),
        ("each-server: true, batch: [-1]", "jobs.j.strategy.batch[0]: a batch size is a positive integer"),
        ("each-server: true, batch: [x]", "a batch size is a positive integer or a percentage like 25%, got 'x'"),
        ("each-server: true, batch: [1.5]", "a batch size is a positive integer"),
        ("each-server: true, batch: []", "jobs.j.strategy.batch"),
        ("each-server: true, batch: [1], max-fail-percentage: 101", "max-fail-percentage: must be at most 100"),
        ("each-server: true, batch: [1], max-fail-percentage: -1", "max-fail-percentage: must be at least 0"),
        ("each-server: true, max-fail-percentage: 10", "max-fail-percentage is the failure budget of batch"),
        ("max-parallel: 2, batch: [1]", "batch applies to a fan-out job"),
    ],
)
def test_bad_batches_are_refused_at_submit_with_their_place(strategy: str, message: str) -> None:
    text = f"""name: w
jobs:
  j:
    runs-on: g
    strategy: {{{strategy}}}
    steps: [{{uses: exec/shell, with: {{command: 'true'}}}}]
"""
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(text)
    shown = str(caught.value)
    assert message in shown, shown
    assert shown.startswith("5:") or "\n5:" in shown or " 5:" in shown, shown  # the strategy's line


# -- the interpreter ---------------------------------------------------------------------------


async def test_a_budget_reached_but_not_exceeded_runs_every_batch(h: Harness, temporal_client: Client) -> None:
    names = servers(10)
    progress, error = await roll(h, temporal_client, names, [names[5], names[9]])
    assert isinstance(error, ApplicationError)
    # 1 of 7 started failed after batch 3 (14 %), 2 of 10 after batch 4 (20 %): never more than 20 %.
    assert [job(progress, "deploy", n).status for n in names] == ["success"] * 5 + ["failure"] + ["success"] * 3 + [
        "failure"
    ]
    assert [job(progress, "deploy", n).batch for n in names] == [1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    message = job(progress, "deploy").error or ""
    assert message.startswith(f"job deploy failed on 2 of 10 servers ({names[5]}, {names[9]}): "), message
    assert "stopped" not in message
    spans = batches_by_calls(h, names)
    groups = [[0], [1, 2, 3], [4, 5, 6], [7, 8, 9]]
    for before, after in itertools.pairwise(groups):
        # A batch starts only once every server of the previous one finished.
        assert min(spans[i][0] for i in after) >= max(spans[i][1] for i in before)


async def test_a_budget_exceeded_stops_starting_batches(h: Harness, temporal_client: Client) -> None:
    names = servers(10)
    progress, error = await roll(h, temporal_client, names, [names[2], names[3]], record="each_server_batches")
    assert isinstance(error, ApplicationError)
    statuses = [job(progress, "deploy", n).status for n in names]
    assert statuses == ["success", "success", "failure", "failure"] + ["skipped"] * 6
    message = job(progress, "deploy").error or ""
    assert message.startswith(
        f"job deploy failed on 2 of 10 servers ({names[2]}, {names[3]}); stopped after batch 2 of 4: "
        "2 of the 4 servers started failed, more than max-fail-percentage 20%; 6 servers not started: "
    ), message
    assert not [c for c in h.nodes.calls if any(c.activity_id.endswith(f"#{n}") for n in names[4:])]
    skipped = job(progress, "deploy", names[4])
    assert skipped.batch == 3
    assert (skipped.error or "").startswith("not started: the job stopped after batch 2 of 4")
    assert [s.status for s in skipped.steps] == ["skipped", "skipped"]
    (matrix,) = job_matrices(progress)
    assert matrix.steps == ["up", "check"]
    assert [(r.status, r.cells) for r in matrix.rows[1:5]] == [
        ("ok", ["skipped", "ok"]),
        ("failed", ["failed", "skipped"]),
        ("failed", ["failed", "skipped"]),
        ("skipped", ["skipped", "skipped"]),
    ]


async def test_a_failed_canary_stops_the_rollout(h: Harness, temporal_client: Client) -> None:
    names = servers(4)
    progress, error = await roll(h, temporal_client, names, [names[0]])
    assert isinstance(error, ApplicationError)
    assert [job(progress, "deploy", n).status for n in names] == ["failure", "skipped", "skipped", "skipped"]
    assert "stopped after batch 1 of 4: 1 of the 1 servers started failed" in (job(progress, "deploy").error or "")


async def test_fail_fast_cancels_the_running_batch_and_the_rest(h: Harness, temporal_client: Client) -> None:
    names = servers(4)
    h.servers[h.queue] = names
    text = f"""
name: roll
jobs:
  deploy:
    runs-on: {h.queue}
    strategy: {{each-server: true, batch: [2], fail-fast: true, max-parallel: 2}}
    steps:
      - {{id: up, uses: test/fail, if: server.name == '{names[0]}'}}
      - {{id: wait, uses: test/sleep, with: {{seconds: '30'}}, heartbeat-timeout: 2s}}
"""
    async with AsyncExitStack() as stack:
        for name in names:
            await stack.enter_async_context(activity_worker(temporal_client, f"agent:{name}", h.nodes))
        progress, error = await h.run(text)
    assert isinstance(error, ApplicationError)
    assert [job(progress, "deploy", n).status for n in names] == ["failure", "cancelled", "cancelled", "cancelled"]
    assert step(progress, "deploy", "wait", names[1]).status == "cancelled"
    assert not [c for c in h.nodes.calls if c.activity_id.endswith((f"#{names[2]}", f"#{names[3]}"))]


async def test_max_parallel_bounds_a_batch(h: Harness, temporal_client: Client) -> None:
    names = servers(4)
    text = ROLL.replace("[1, 30%], max-fail-percentage: 20 MORE", "[4], max-parallel: 2").replace("BAD", "")
    h.servers[h.queue] = names
    async with AsyncExitStack() as stack:
        for name in names:
            await stack.enter_async_context(activity_worker(temporal_client, f"agent:{name}", h.nodes))
        progress, error = await h.run(text)
    assert error is None, error
    assert [job(progress, "deploy", n).batch for n in names] == [1, 1, 1, 1]
    checks = sorted((c.started, c.ended) for c in h.nodes.calls if c.activity_id.startswith("deploy/check#"))
    assert len(checks) == 4
    for i, (started, _) in enumerate(checks):
        assert sum(1 for _, ended in checks[:i] if ended > started) < 2, checks


async def test_the_matrix_tells_timed_out_from_failed(h: Harness, temporal_client: Client) -> None:
    names = servers(3)
    h.servers[h.queue] = names
    text = f"""
name: matrix
jobs:
  probe:
    runs-on: {h.queue}
    strategy: {{each-server: true}}
    steps:
      - id: fail
        uses: test/fail
        if: server.name == '{names[0]}'
      - id: hang
        uses: test/sleep
        if: server.name == '{names[1]}'
        timeout: 1s
        with: {{seconds: '30'}}
      - {{id: after, uses: test/echo}}
      - {{id: cleanup, uses: test/echo, if: always()}}
"""
    async with AsyncExitStack() as stack:
        for name in names:
            await stack.enter_async_context(activity_worker(temporal_client, f"agent:{name}", h.nodes))
        progress, error = await h.run(text)
    assert isinstance(error, ApplicationError)
    assert step(progress, "probe", "hang", names[1]).timed_out
    assert not step(progress, "probe", "fail", names[0]).timed_out
    (matrix,) = job_matrices(progress)
    assert matrix.job == "probe"
    assert matrix.steps == ["fail", "hang", "after", "cleanup"]
    assert [(r.instance, r.status, r.cells) for r in matrix.rows] == [
        (names[0], "failed", ["failed", "skipped", "skipped", "ok"]),
        (names[1], "timed-out", ["skipped", "timed-out", "skipped", "ok"]),
        (names[2], "ok", ["skipped", "skipped", "ok", "ok"]),
    ]
    assert f"step probe/hang#{names[1]} failed: timed out after 1s" in (matrix.rows[1].error or "")
    (bounded,) = job_matrices(progress, max_rows=1)
    assert [r.instance for r in bounded.rows] == [names[0]] and bounded.rows_left_out == 2


# -- unreachable servers -----------------------------------------------------------------------


class _Inventory(ServerGroupProvider):
    """Lists servers it does not know to be live: the workflow must ask the registry."""

    name = "test-inventory"
    lists_live_agents = False

    def __init__(self, groups: dict[str, list[str]], client: Client) -> None:
        super().__init__({}, client=client)
        self._groups = groups

    async def servers(self, group: str) -> list[dict[str, Any]]:
        return [{"name": n} for n in self._groups.get(group, [])]

    async def groups(self) -> list[str]:
        return sorted(self._groups)


async def test_a_listed_server_without_an_agent_fails_at_once(temporal_client: Client, task_queue: str) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    live = servers(2)
    ghost = f"{live[0]}-ghost"
    provider = _Inventory({group: [*live, ghost]}, temporal_client)
    infos = [AgentInfo(name=n, groups=[group], instance=n, heartbeat_interval_seconds=30) for n in live]
    wf_queue = f"{task_queue}-wf"
    nodes = Nodes()
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(build_interpreter_worker(temporal_client, wf_queue, server_groups=provider))
        for name in live:
            await stack.enter_async_context(
                Worker(
                    temporal_client,
                    task_queue=personal_queue(name),
                    workflows=[AgentRegistryWorkflow],
                    workflow_runner=sandboxed_runner(),
                )
            )
            await stack.enter_async_context(activity_worker(temporal_client, f"agent:{name}", nodes))
        for info in infos:
            await announce(temporal_client, info)
        await eventually(
            lambda: listed_servers(provider, temporal_client, group), lambda s: sum(x.live for x in s) == 2
        )
        run = Harness(temporal_client, group, wf_queue, nodes, {})
        text = """
name: reach
jobs:
  check:
    runs-on: QUEUE
    strategy: {each-server: true}
    steps: [{id: ok, uses: test/echo}]
"""
        progress, error = await run.run(text)
        for info in infos:
            await withdraw(temporal_client, info.name, info.instance)
    assert isinstance(error, ApplicationError)
    assert {j.instance: j.status for j in progress.jobs if j.instance} == {
        live[0]: "success",
        live[1]: "success",
        ghost: "failure",
    }
    assert job(progress, "check", ghost).error == f"server {ghost} has no live agent (group {group})"
    message = job(progress, "check").error or ""
    assert message.startswith(f"job check failed on 1 of 3 servers ({ghost}): server {ghost} has no live agent")
    assert not [c for c in nodes.calls if c.activity_id.endswith(ghost)]
    (matrix,) = job_matrices(progress)
    assert [(r.instance, r.status, r.cells) for r in matrix.rows][1] == (ghost, "failed", ["skipped"])


async def test_a_step_whose_agent_died_after_the_listing_fails_when_not_picked_up(
    h: Harness, temporal_client: Client
) -> None:
    alive, dead = servers(2)
    h.servers[h.queue] = [alive, dead]  # both listed live; nobody polls the dead one's queue
    text = f"""
name: pickup
jobs:
  check:
    runs-on: {h.queue}
    strategy: {{each-server: true}}
    steps: [{{id: ok, uses: test/echo, timeout: 2s}}]
"""
    async with activity_worker(temporal_client, f"agent:{alive}", h.nodes):
        progress, error = await h.run(text)
    assert isinstance(error, ApplicationError)
    assert job(progress, "check", alive).status == "success"
    hung = step(progress, "check", "ok", dead)
    assert hung.status == "failure" and hung.timed_out
    assert hung.error == f"step check/ok#{dead} failed: no agent picked it up in time"
    (matrix,) = job_matrices(progress)
    assert [(r.instance, r.status) for r in matrix.rows] == [(alive, "ok"), (dead, "timed-out")]
