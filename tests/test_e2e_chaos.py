"""Load and chaos, reduced form (the full one is ``bench/bench_chaos.py``; ADR 0046).

One stack (Temporal, a server, three agents, real processes) for the module:

- 150 runs submitted at once: every one completes, each step ran exactly once;
- three trials of a mixed load (sequential, parallel jobs, a fan-out, a failing step with a
  compensation, a flow/sleep) with random ``kill -9`` of agents, the server and Temporal:
  every run ends as designed, no completed step ran again except one in flight at a kill;
- Temporal stopped (SIGSTOP) for 10 s under load: submits get 503 promptly, the agents and the
  server reconnect by themselves and the runs finish.

The fault schedule comes from a seed: ``WATERFLOW_CHAOS_SEED=<n>`` replays the one a failure printed.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow_testing.chaos import (
    MIXED,
    ONE_STEP,
    ChaosStack,
    check_ledger,
    submit_all,
    temporal_outage,
    wait_all,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    with ChaosStack(tmp_path_factory.mktemp("chaos")) as running:
        yield running


def fresh_ledger(stack: ChaosStack, name: str) -> Path:
    """A ledger directory of this test's own (the stack's files of earlier tests stay apart)."""
    stack.ledger_dir = stack.root / f"ledger-{name}"
    stack.ledger_dir.mkdir()
    return stack.ledger_dir


def test_150_concurrent_runs_complete_exactly_once(stack: ChaosStack) -> None:
    ledger = fresh_ledger(stack, "load")
    plan = [(f"{stack.group}-load-{i}", ONE_STEP) for i in range(150)]

    async def load() -> None:
        outcome = await submit_all(stack.url, stack.group, ledger, plan, concurrency=20)
        await wait_all(stack.url, outcome, timeout=300)
        counts = check_ledger(ledger, outcome, stack.disruptions)
        assert counts == {"steps": 150, "reexecuted": 0}

    asyncio.run(load())


async def one_trial(stack: ChaosStack, trial: int, rng: random.Random) -> str:
    """The mixed load, twice each, with one random kill -9 while it is submitted and runs."""
    ledger = fresh_ledger(stack, f"trial{trial}")
    plan = [(f"{stack.group}-t{trial}-{i}-{kind.name}", kind) for i in range(2) for kind in MIXED]
    rng.shuffle(plan)
    load = asyncio.create_task(submit_all(stack.url, stack.group, ledger, plan, concurrency=4))
    await asyncio.sleep(rng.uniform(0.5, 3))
    fault = await asyncio.to_thread(stack.random_fault, rng)
    outcome = await load
    await wait_all(stack.url, outcome, timeout=300)
    check_ledger(ledger, outcome, stack.disruptions)
    return fault


def test_random_kill_9_during_a_mixed_load(stack: ChaosStack) -> None:
    seed = int(os.environ.get("WATERFLOW_CHAOS_SEED") or random.randrange(1 << 31))
    print(f"chaos seed {seed} (replay: WATERFLOW_CHAOS_SEED={seed})")
    for trial in range(3):
        fault = asyncio.run(one_trial(stack, trial, random.Random(seed + trial)))
        print(f"trial {trial} (seed {seed + trial}): {fault}")


def test_temporal_unreachable_for_10s(stack: ChaosStack) -> None:
    ledger = fresh_ledger(stack, "outage")
    plan = [(f"{stack.group}-before-{i}-{kind.name}", kind) for i in range(2) for kind in MIXED]

    async def outage() -> None:
        before = await submit_all(stack.url, stack.group, ledger, plan)
        report = await temporal_outage(stack, before, 10)
        # A clear, prompt refusal: never a hang, never a 500.
        assert report.health == 503
        assert [status for status, _ in report.answers] == [503, 503, 503], report.answers
        assert all(seconds < 30 for _, seconds in report.answers), report.answers
        # The same processes, reconnected by themselves: nothing was restarted.
        assert stack.server is not None and stack.server.returncode is None
        assert all(agent.returncode is None for agent in stack.agents.values())
        plan_after = [(f"{stack.group}-after-{kind.name}", kind) for kind in MIXED]
        after = await submit_all(stack.url, stack.group, ledger, plan_after)
        await wait_all(stack.url, after, timeout=300)
        before.ids.update(after.ids)
        before.statuses.update(after.statuses)
        check_ledger(ledger, before, stack.disruptions)

    began = time.monotonic()
    asyncio.run(outage())
    print(f"outage test took {time.monotonic() - began:.0f}s")
