"""Data the run sends through Temporal is bounded (``interpreter/payloads.py``, ADR 0023).

A step whose activity input would pass Temporal's payload limit fails by itself, naming its path,
the size and what made it large; the run goes on as after any failed step (``always()`` steps,
compensations) instead of its workflow task failing forever. The progress query stays bounded.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from waterflow_core.interpreter import payloads
from waterflow_core.interpreter.contexts import PROGRESS_BUDGET
from waterflow_core.runs import PROGRESS_QUERY, RunProgress

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Harness, harness, step


@pytest.fixture
async def h(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    async for running in harness(temporal_client, task_queue):
        yield running


async def test_a_step_input_over_the_limit_fails_the_step_and_the_run_goes_on(h: Harness) -> None:
    progress, error = await h.run(
        """
name: payload-limit
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: undoable
        uses: test/echo
        with: {v: one}
        compensate: {uses: test/echo, with: {undo: $<< steps.undoable.outputs.v >>}}
      - {id: a, uses: test/echo, with: {big: '540000'}}
      - {id: b, uses: test/echo, with: {big: '540000'}}
      - id: both
        uses: test/echo
        with: {v: $<< steps.a.outputs.big >>$<< steps.b.outputs.big >>}
      - id: cleanup
        if: always()
        uses: test/echo
        with: {v: cleaned}
""",
        record="payload_limit",
    )
    assert isinstance(error, ApplicationError)
    both = step(progress, "j", "both")
    assert both.status == "failure" and both.attempt == 0
    assert both.error is not None and both.error.startswith("step j/both failed: its input is 1.1 MB ("), both.error
    assert f"over the {payloads.MAX_STEP_INPUT} bytes" in both.error
    assert "largest: steps.a (540" in both.error and "steps.b (540" in both.error
    assert "j/both" not in h.nodes.ids()  # never scheduled
    assert step(progress, "j", "cleanup").status == "success"
    assert [(c.id, c.status) for c in progress.compensations] == [("undoable.compensate", "success")]
    assert progress.status == "failed" and progress.error == both.error


async def test_a_compensation_input_over_the_limit_fails_it_and_the_others_run(h: Harness) -> None:
    progress, error = await h.run(
        """
name: payload-limit-saga
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: first
        uses: test/echo
        with: {v: one}
        compensate: {uses: test/echo, with: {undo: $<< steps.first.outputs.v >>}}
      - {id: half, uses: test/echo, with: {big: '600000'}}
      - id: big
        uses: test/echo
        with: {big: '600000'}
        compensate: {uses: test/echo, with: {a: $<< steps.half.outputs.big >>, b: $<< steps.big.outputs.big >>}}
      - {id: verify, uses: test/fail, with: {message: verify failed}}
""",
    )
    assert isinstance(error, ApplicationError)
    assert [(c.id, c.status) for c in progress.compensations] == [
        ("big.compensate", "failure"),
        ("first.compensate", "success"),
    ]
    refused = progress.compensations[0].error or ""
    assert refused.startswith("compensation j/big.compensate failed: its input is "), refused
    assert progress.error is not None and "verify failed" in progress.error and "j/big.compensate" in progress.error


async def test_a_fanout_job_output_read_by_a_later_job_is_bounded_too(h: Harness) -> None:
    progress, error = await h.run(
        """
name: payload-limit-needs
jobs:
  build:
    runs-on: QUEUE
    strategy: {matrix: {n: [1, 2, 3]}}
    outputs: {blob: $<< steps.make.outputs.big >>}
    steps:
      - {id: make, uses: test/echo, with: {big: '400000'}}
  use:
    needs: build
    runs-on: QUEUE
    steps:
      - {id: read, uses: test/echo, with: {all: $<< needs.build.outputs >>}}
""",
    )
    assert isinstance(error, ApplicationError)
    read = step(progress, "use", "read")
    assert read.status == "failure" and read.error is not None
    assert "step use/read failed: its input is 1.2 MB" in read.error and "needs.build" in read.error


async def test_the_progress_query_stays_bounded_while_the_run_runs(h: Harness) -> None:
    handle = await h.start(
        """
name: payload-query
jobs:
  j:
    runs-on: QUEUE
    strategy: {matrix: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]}}
    steps:
      - {id: wide, uses: test/echo, with: {k01: '$<< format(''{0}'', ''x'') >>'}}
      - {id: hold, uses: test/sleep, with: {seconds: '30'}}
""".replace(
            "{k01: '$<< format(''{0}'', ''x'') >>'}",
            "{" + ", ".join(f"k{i:02}: {'y' * 1000}" for i in range(50)) + "}",
        )
    )
    await h.wait_running(handle, "j/hold#24")
    progress = await handle.query(PROGRESS_QUERY, result_type=RunProgress)
    assert len(progress.model_dump_json().encode()) <= PROGRESS_BUDGET
    assert progress.status == "running"
    assert [j.status for j in progress.jobs[1:]] == ["running"] * 24
    await handle.cancel()
