"""Reruns (ADR 0039): a new run of a finished run's snapshot that skips what succeeded there.

The original runs first; :func:`plan_rerun` reads its input and final progress, as the API does,
and the rerun starts with the result. Steps fail in the original only (their ``if`` reads the
run id), so the rerun shows what it ran and what it reused.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from waterflow_core.dsl import load_workflow
from waterflow_core.interpreter import start_run
from waterflow_core.rerun import RerunError, plan_rerun
from waterflow_core.runs import RunInput, RunProgress

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Harness, activity_worker, harness, job, step


@pytest.fixture
async def h(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    async for running in harness(temporal_client, task_queue):
        yield running


async def run(h: Harness, planned: RunInput, run_id: str, record: str | None = None) -> RunProgress:
    handle = await start_run(h.client, planned, workflow_id=run_id, task_queue=h.wf_queue)
    progress, _ = await h.finish(handle, record=record)
    return progress


def planned(h: Harness, text: str, inputs: dict[str, Any] | None = None) -> RunInput:
    return RunInput.plan(load_workflow(text.replace("QUEUE", h.queue)), inputs)


FANOUT = """
name: rerun-fanout
inputs:
  version: {type: string}
jobs:
  deploy:
    runs-on: QUEUE
    strategy: {each-server: true}
    outputs: {host: $<< steps.up.outputs.on >>}
    steps:
      - {id: up, uses: test/echo, with: {on: $<< server.name >>, v: $<< inputs.version >>}}
      - id: check
        uses: test/fail
        if: server.name == 'BAD' && workflow.id == 'ORIG'
      - {id: done, uses: test/echo, with: {seen: $<< steps.up.outputs.on >>}}
  report:
    runs-on: QUEUE
    needs: deploy
    steps:
      - id: all
        uses: test/echo
        with:
          hosts: $<< join(needs.deploy.outputs.*.host, ',') >>
"""


async def test_failed_only_runs_the_failed_servers_and_reuses_the_others_outputs(
    h: Harness, temporal_client: Client
) -> None:
    names = sorted(f"srv-{uuid.uuid4().hex[:6]}-{n}" for n in range(3))
    bad = names[1]
    h.servers[h.queue] = names
    original = f"orig-{uuid.uuid4().hex[:8]}"
    text = FANOUT.replace("BAD", bad).replace("ORIG", original)
    first_input = planned(h, text, {"version": "1.2"})
    async with AsyncExitStack() as stack:
        for name in names:
            await stack.enter_async_context(activity_worker(temporal_client, f"agent:{name}", h.nodes))
        first = await run(h, first_input, original)
        assert first.status == "failed"
        assert job(first, "report").status == "skipped"
        h.nodes.calls.clear()

        again = plan_rerun(original, first_input, first, failed_only=True)
        assert again.inputs == first_input.inputs and again.workflow == first_input.workflow
        rerun_id = f"rerun-{uuid.uuid4().hex[:8]}"
        second = await run(h, again, rerun_id, record="rerun")

    assert second.status == "succeeded", second.error
    ran = sorted(c.activity_id for c in h.nodes.calls)
    assert ran == sorted([f"deploy/up#{bad}", f"deploy/done#{bad}", "report/all"])
    assert all(
        c.task.contexts.get("inputs", {}).get("version") == "1.2" for c in h.nodes.calls if "up#" in c.activity_id
    )
    for name in (names[0], names[2]):
        instance = job(second, "deploy", name)
        assert (instance.status, instance.conclusion, instance.succeeded_in) == ("skipped", "success", original)
        up = step(second, "deploy", "up", name)
        assert (up.status, up.conclusion, up.succeeded_in) == ("skipped", "success", original)
        assert up.outputs["v"] == "1.2"
        check = step(second, "deploy", "check", name)
        assert (check.status, check.conclusion, check.succeeded_in) == ("skipped", "skipped", None)
    assert job(second, "deploy", bad).status == "success"
    assert step(second, "deploy", "check", bad).status == "skipped"  # its `if` reads the run id
    report = next(c for c in h.nodes.calls if c.activity_id == "report/all")
    # needs.deploy.outputs holds every server's outputs: the reused ones and the rerun one (the
    # harness's nodes render server.name as their own agent's name)
    assert report.task.contexts["needs"]["deploy"]["outputs"] == [{"host": h.nodes.agent}] * 3


SAGA = """
name: rerun-saga
jobs:
  build:
    runs-on: QUEUE
    steps:
      - {id: fetch, uses: test/echo, with: {got: source}}
      - id: migrate
        uses: test/echo
        with: {did: migrate}
        compensate: {uses: test/echo, with: {undo: migrate}}
      - {id: use, uses: test/echo, with: {from: $<< steps.fetch.outputs.got >>}}
      - id: flaky
        uses: test/fail
        if: workflow.id == 'ORIG'
      - {id: last, uses: test/echo, with: {n: '1'}}
"""


async def test_from_step_resumes_there_and_reruns_what_was_compensated(h: Harness) -> None:
    original = f"orig-{uuid.uuid4().hex[:8]}"
    first_input = planned(h, SAGA.replace("ORIG", original))
    first = await run(h, first_input, original)
    assert first.status == "failed"
    assert [c.id for c in first.compensations] == ["migrate.compensate"]
    h.nodes.calls.clear()

    rerun_id = f"rerun-{uuid.uuid4().hex[:8]}"
    second = await run(h, plan_rerun(original, first_input, first, from_step="build/use"), rerun_id)

    assert second.status == "succeeded", second.error
    # fetch is reused; migrate was undone by the original's compensation, so it runs again
    assert [c.activity_id for c in h.nodes.calls] == ["build/migrate", "build/use", "build/last"]
    fetch = step(second, "build", "fetch")
    assert (fetch.status, fetch.succeeded_in, fetch.outputs) == ("skipped", original, {"got": "source"})
    use = next(c for c in h.nodes.calls if c.activity_id == "build/use")
    assert use.task.contexts["steps"]["fetch"]["outputs"] == {"got": "source"}
    assert step(second, "build", "flaky").status == "skipped"
    assert job(second, "build").succeeded_in is None


UNDO = """
name: rerun-undo
jobs:
  build:
    runs-on: QUEUE
    steps:
      - id: migrate
        uses: test/echo
        with: {did: migrate}
        compensate: {uses: test/echo, with: {undo: migrate}}
      - id: swap
        uses: test/echo
        with: {did: swap}
        compensate: {uses: test/echo, with: {undo: swap}}
      - {id: verify, uses: test/fail, if: workflow.id != 'ORIG'}
"""


async def test_a_failed_rerun_compensates_only_what_it_ran(h: Harness) -> None:
    original = f"orig-{uuid.uuid4().hex[:8]}"
    first_input = planned(h, UNDO.replace("ORIG", original))
    first = await run(h, first_input, original)
    assert first.status == "succeeded" and first.compensations == []
    h.nodes.calls.clear()

    rerun_id = f"rerun-{uuid.uuid4().hex[:8]}"
    second = await run(h, plan_rerun(original, first_input, first, from_step="build/swap"), rerun_id)

    assert second.status == "failed"
    # migrate succeeded in the original and was skipped here: its compensation is not the rerun's
    assert [c.id for c in second.compensations] == ["swap.compensate"]
    assert [c.activity_id for c in h.nodes.calls] == ["build/swap", "build/verify", "build/swap.compensate"]
    assert step(second, "build", "migrate").succeeded_in == original


def test_from_step_must_name_a_step_of_the_run() -> None:
    snapshot = RunInput.plan(load_workflow(SAGA.replace("QUEUE", "q")))
    progress = RunProgress(name="rerun-saga", status="failed")
    with pytest.raises(RerunError, match="job build has no step 'nope'"):
        plan_rerun("x", snapshot, progress, from_step="build/nope")
    with pytest.raises(RerunError, match="expected JOB/STEP with a job of the run"):
        plan_rerun("x", snapshot, progress, from_step="deploy")
    assert plan_rerun("x", snapshot, progress).rerun is not None
    unreadable = RunInput(workflow={"name": "w", "jobs": {"j": {"runs-on": "q", "steps": "not a list"}}})
    with pytest.raises(RerunError, match="cannot be read by this version") as caught:
        plan_rerun("x", unreadable, progress)
    assert caught.value.field == "workflow"
