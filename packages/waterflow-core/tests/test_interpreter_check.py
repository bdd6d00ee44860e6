"""Check runs (``RunInput.check``, ADR 0041): steps with ``check:`` run it instead of
themselves, the others are skipped with reason ``check run``, nested flow steps likewise, and
no compensation runs."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from waterflow_core.dsl import load_workflow
from waterflow_core.interpreter import start_run
from waterflow_core.runs import CHECK_MEMO, RunInput

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Harness, harness


@pytest.fixture
async def h(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    async for running in harness(temporal_client, task_queue):
        yield running


DEPLOY = """
name: check-deploy
inputs:
  version: {type: string}
env: {STAGE: prod}
jobs:
  deploy:
    runs-on: QUEUE
    steps:
      - id: pull
        uses: test/echo
        with: {pulled: $<< inputs.version >>}
        env: {MODE: real}
        check:
          name: is $<< inputs.version >> there
          uses: test/echo
          with: {looked-for: $<< inputs.version >>}
          env: {MODE: dry}
        compensate: {uses: test/echo, with: {undo: pull}}
      - id: restart
        uses: test/echo
        with: {restarted: true}
      - id: each
        uses: flow/loop
        with:
          items: [a, b]
          steps:
            - {id: touch, uses: test/echo, with: {touched: $<< loop.item >>}}
            - id: probe
              uses: test/echo
              with: {changed: $<< loop.item >>}
              check: {uses: test/echo, with: {probed: $<< loop.item >>}}
      - {id: boom, uses: test/fail, if: always()}
"""


async def _check_run(h: Harness, text: str, inputs: dict[str, str] | None = None) -> tuple[str, RunInput]:
    planned = RunInput.plan(load_workflow(text.replace("QUEUE", h.queue)), inputs)
    planned = planned.model_copy(update={"check": True})
    run_id = f"check-{uuid.uuid4().hex[:10]}"
    return run_id, planned


async def test_a_check_run_runs_only_the_checks_and_skips_the_rest(h: Harness) -> None:
    run_id, planned = await _check_run(h, DEPLOY, {"version": "1.4"})
    handle = await start_run(h.client, planned, workflow_id=run_id, task_queue=h.wf_queue)
    progress, error = await h.finish(handle)

    # Only the checks ran: the real pull, restart, touch and the failing step never did.
    assert sorted(next(iter(call.task.with_)) for call in h.nodes.calls) == ["looked-for", "probed", "probed"]
    pull = h.nodes.by_id("deploy/pull")
    assert len(pull) == 1 and pull[0].task.name == "is 1.4 there"
    assert pull[0].task.env["MODE"] == "dry" and pull[0].task.env["STAGE"] == "prod"
    assert error is None and progress.status == "succeeded"

    steps = {step.id: step for step in progress.jobs[0].steps}
    assert steps["pull"].status == "success" and steps["pull"].reason == "ran its check"
    assert steps["pull"].outputs == {"looked-for": "1.4"}
    for skipped in ("restart", "boom"):
        assert steps[skipped].status == "skipped" and steps[skipped].reason == "check run", skipped
    assert steps["each"].status == "success"  # the loop ran: its steps were checked or skipped
    nested = [call.task.step for call in h.nodes.calls if call.task.step != "pull"]
    assert all("probe" in path for path in nested) and len(nested) == 2
    assert progress.compensations == []  # nothing to undo: the step itself never ran

    description = await handle.describe()
    assert (await description.memo())[CHECK_MEMO] is True


async def test_a_failing_check_fails_the_run_and_compensates_nothing(h: Harness) -> None:
    text = """
name: check-fails
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: made
        uses: test/echo
        check: {uses: test/echo, with: {ok: true}}
        compensate: {uses: test/echo, with: {undo: made}}
      - id: gone
        uses: test/echo
        check: {uses: test/fail, with: {message: disk is full}}
"""
    run_id, planned = await _check_run(h, text)
    handle = await start_run(h.client, planned, workflow_id=run_id, task_queue=h.wf_queue)
    progress, _ = await h.finish(handle)
    assert progress.status == "failed" and "disk is full" in (progress.error or "")
    assert [call.node for call in h.nodes.calls] == ["test/echo", "test/fail"]
    assert progress.compensations == [] and h.nodes.by_id("j/made.compensate") == []


async def test_a_normal_run_never_runs_a_check(h: Harness) -> None:
    progress, _ = await h.run(DEPLOY.replace("- {id: boom, uses: test/fail, if: always()}", ""), {"version": "2"})
    assert progress.status == "succeeded"
    assert all("looked-for" not in call.task.with_ and "probed" not in call.task.with_ for call in h.nodes.calls)
    assert all(step.reason is None for step in progress.jobs[0].steps)
    assert h.nodes.by_id("deploy/restart")
