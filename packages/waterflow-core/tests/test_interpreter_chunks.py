"""Long loops run in chunks (child workflows): order, break-if, failure, cancellation, saga.

The thresholds are lowered for these tests (``flow.MAX_INLINE_ITEMS``, ``chunks.CHUNK_ITEMS``;
the interpreter modules are passed through the workflow sandbox, so the worker's runs see the
test's values): a loop over more than 4 items runs in chunks of at most 3 items, so every case
crosses chunk boundaries with a few activities. The 5,000-item loop under lowered Temporal
history limits is ``tests/test_e2e_long_loop.py``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError, CancelledError

from waterflow_core.interpreter import chunks, flow
from waterflow_core.runs import PROGRESS_QUERY, RunProgress

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Harness, harness, render, step


@pytest.fixture
async def h(temporal_client: Client, task_queue: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    monkeypatch.setattr(flow, "MAX_INLINE_ITEMS", 4)
    monkeypatch.setattr(chunks, "CHUNK_ITEMS", 3)
    async for running in harness(temporal_client, task_queue):
        yield running


async def chunk_ids(h: Harness, workflow_id: str) -> list[str]:
    """The ids of the chunk workflows the run started, in order, without the run id before them."""
    history = await h.client.get_workflow_handle(workflow_id).fetch_history()
    run_id = history.events[0].workflow_execution_started_event_attributes.original_execution_run_id
    started = EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ids = [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_id
        for e in history.events
        if e.event_type == started
    ]
    assert all(i.startswith(f"{run_id}/") for i in ids), ids
    return [i.removeprefix(f"{run_id}/") for i in ids]


def loop_indexes(h: Harness, suffix: str) -> list[int]:
    return [c.task.contexts["loop"]["index"] for c in h.nodes.calls if c.activity_id.endswith(suffix)]


async def test_a_long_loop_runs_in_chunks_in_order(h: Harness) -> None:
    handle = await h.start(
        """
name: flow-chunks
jobs:
  j:
    runs-on: QUEUE
    env: {STAGE: prod}
    steps:
      - {id: before, uses: test/echo, with: {v: first}}
      - id: each
        uses: flow/loop
        env: {WHERE: $<< env.STAGE >>-loop}
        with:
          items: $<< fromJSON(inputs.items) >>
          max-parallel: 2
          steps:
            - id: s
              uses: test/echo
              with: {item: $<< loop.item >>, i: $<< loop.index >>, outer: $<< steps.before.outputs.v >>}
      - id: after
        uses: test/echo
        with: {items: $<< steps.each.outputs.results.*.s.outputs.item >>, count: $<< steps.each.outputs.count >>}
inputs:
  items: {type: string}
""",
        {"items": json.dumps([f"host-{n}" for n in range(10)])},
    )
    progress, error = await h.finish(handle)
    assert error is None, error
    assert step(progress, "j", "after").outputs == {"items": [f"host-{n}" for n in range(10)], "count": 10}
    calls = [c for c in h.nodes.calls if "/each[" in c.activity_id]
    assert sorted(c.activity_id for c in calls) == sorted(f"j/each[{n}]/s" for n in range(10))
    assert all(render(c.task.with_, c.task.contexts, "success")["outer"] == "first" for c in calls)
    # The steps carry the run's workflow id (agents key secrets and logs by it), and the env.
    assert {c.task.workflow_id for c in calls} == {handle.id}
    assert all(c.task.env["WHERE"] == "$<< env.STAGE >>-loop" for c in calls)
    assert await chunk_ids(h, handle.id) == [f"j/each/chunk-{n}" for n in range(1, 5)]
    each = step(progress, "j", "each")
    assert each.status == "success" and each.outputs["count"] == 10
    assert each.log_tail == ["ran in 4 chunks (child workflows)", "ran 10 of 10 iterations"]
    # A chunk is its own workflow, of its own type, which answers the progress query.
    first = h.client.get_workflow_handle(f"{handle.result_run_id}/j/each/chunk-1")
    described = await first.describe()
    assert described.workflow_type == chunks.CHUNK_WORKFLOW_TYPE
    assert described.status == WorkflowExecutionStatus.COMPLETED
    chunk = await first.query(PROGRESS_QUERY, result_type=RunProgress)
    assert [s.id for s in chunk.jobs[0].steps] == ["each", "each[0]/s", "each[1]/s", "each[2]/s"]


async def test_a_loop_over_1000_items_runs_in_chunks(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real threshold (the replay corpus replays this run without the lowered values); steps
    # that issue no command keep it fast: a condition that runs nothing, a step skipped by `if`.
    monkeypatch.setattr(flow, "MAX_INLINE_ITEMS", 1000)
    monkeypatch.setattr(chunks, "CHUNK_ITEMS", 400)
    handle = await h.start(
        """
name: flow-chunks-1001
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: $<< fromJSON(inputs.items) >>
          max-parallel: 50
          steps:
            - {uses: flow/condition, with: {if: 'false', then: [{uses: test/echo}]}}
            - {id: s, uses: test/echo, if: loop.index == 0 || loop.index == 1000, with: {i: $<< loop.index >>}}
      - id: after
        uses: test/echo
        with:
          last: $<< steps.each.outputs.results[1000].s.outputs.i >>
          skipped: $<< steps.each.outputs.results[999].s.outcome >>
inputs:
  items: {type: string}
""",
        {"items": json.dumps(list(range(1001)))},
    )
    progress, error = await h.finish(handle, record="flow_loop_chunks")
    assert error is None, error
    assert h.nodes.ids() == ["j/each[0]/s", "j/each[1000]/s", "j/after"]
    assert step(progress, "j", "each").outputs["count"] == 1001
    assert step(progress, "j", "after").outputs == {"last": 1000, "skipped": "skipped"}
    assert await chunk_ids(h, handle.id) == [f"j/each/chunk-{n}" for n in (1, 2, 3)]


async def test_a_loop_goes_on_in_chunks_once_temporal_suggests_a_new_history(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Temporal's suggestion comes at thousands of events on this server: here, at 30 (the real
    # one, under lowered limits, is tests/test_e2e_long_loop.py).
    monkeypatch.setattr(flow, "MAX_INLINE_ITEMS", 1000)

    def suggested() -> bool:
        return workflow.info().get_current_history_length() >= 30 and workflow.patched(flow.LOOP_CHUNKS_PATCH)

    monkeypatch.setattr(flow, "history_suggested", suggested)
    handle = await h.start(
        """
name: flow-chunks-suggested
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: [a, b, c, d, e, f, g, h]
          steps: [{id: s, uses: test/echo, with: {item: $<< loop.item >>}}]
      - {id: after, uses: test/echo, with: {items: $<< steps.each.outputs.results.*.s.outputs.item >>}}
"""
    )
    progress, error = await h.finish(handle)
    assert error is None, error
    assert step(progress, "j", "after").outputs == {"items": list("abcdefgh")}
    log = step(progress, "j", "each").log_tail
    carried = len([c for c in h.nodes.calls if c.task.workflow_id == handle.id and c.activity_id.startswith("j/each")])
    ran_here = int(log[0].removeprefix("ran items 0-").split(" ")[0]) + 1
    assert 1 <= ran_here < 8, log
    chunks_run = (8 - ran_here + 2) // 3  # chunks of at most 3 items
    chunks_text = f"{chunks_run} chunk{'s' * (chunks_run > 1)}"
    assert log[0].endswith(f" in the run's history, the rest in {chunks_text} (child workflows)"), log
    assert carried == 8  # every step carries the run's workflow id, in the run or in a chunk
    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == [*(f"j/each[{n}]/s" for n in range(ran_here)), "j/after"]
    assert await chunk_ids(h, handle.id) == [f"j/each/chunk-{n}" for n in range(1, chunks_run + 1)]


async def test_break_if_stops_the_loop_across_chunks(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-chunks-break
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: $<< fromJSON(inputs.items) >>
          break-if: steps.s.outputs.i == 4
          steps: [{id: s, uses: test/echo, with: {i: $<< loop.index >>}}]
inputs:
  items: {type: string}
""",
        {"items": json.dumps(list(range(10)))},
    )
    assert error is None, error
    assert loop_indexes(h, "/s") == [0, 1, 2, 3, 4]
    each = step(progress, "j", "each")
    assert each.outputs["count"] == 5 and each.outputs["broken"] is True
    assert [r["s"]["outputs"]["i"] for r in each.outputs["results"]] == [0, 1, 2, 3, 4]
    assert "break-if was true after item 4" in each.log_tail


async def test_a_failure_in_a_middle_chunk_fails_the_loop_and_starts_no_later_item(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-chunks-fail
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: $<< fromJSON(inputs.items) >>
          steps:
            - {id: s, uses: test/echo, with: {i: $<< loop.index >>}}
            - {id: bad, uses: test/fail, if: loop.index == 4, with: {message: item four broke}}
      - {id: report, uses: test/echo, if: failure(), with: {count: $<< steps.each.outputs.count >>}}
inputs:
  items: {type: string}
""",
        {"items": json.dumps(list(range(10)))},
    )
    assert isinstance(error, ApplicationError)
    assert "item four broke" in error.message
    assert loop_indexes(h, "/s") == [0, 1, 2, 3, 4]
    assert step(progress, "j", "each").status == "failure"
    assert step(progress, "j", "report").outputs == {"count": 5}


async def test_cancelling_the_run_cancels_the_running_chunk(h: Harness) -> None:
    handle = await h.start(
        """
name: flow-chunks-cancel
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: $<< fromJSON(inputs.items) >>
          steps:
            - id: s
              uses: test/echo
              with: {i: $<< loop.index >>}
              compensate: {uses: test/echo, with: {undo: $<< loop.index >>}}
            - {id: wait, uses: test/sleep, if: loop.index == 4, with: {seconds: '60'}}
      - {id: on-cancel, uses: test/echo, if: cancelled()}
inputs:
  items: {type: string}
""",
        {"items": json.dumps(list(range(10)))},
    )
    await h.wait_running(handle, "j/each[4]/wait")
    # The loop step shows how far the loop got and which chunk runs.
    running = await handle.query(PROGRESS_QUERY, result_type=RunProgress)
    assert step(running, "j", "each").log_tail == [
        "ran 3 of 10 iterations (1 chunk done)",
        f"chunk 2 (items 3-5) running: {handle.result_run_id}/j/each/chunk-2",
    ]
    await handle.cancel()
    progress, error = await h.finish(handle)
    assert isinstance(error, CancelledError)
    assert [c.outcome for c in h.nodes.by_id("j/each[4]/wait")] == ["cancelled"]
    assert step(progress, "j", "each").status == "cancelled"
    assert step(progress, "j", "on-cancel").status == "success"
    # The chunk answered with its compensations: the run undid every iteration, last first.
    undo = [c for c in h.nodes.calls if c.activity_id.endswith(".compensate")]
    assert [c.activity_id for c in undo] == [f"j/each[{n}]/s.compensate" for n in range(4, -1, -1)]
    chunk = await h.client.get_workflow_handle(f"{handle.result_run_id}/j/each/chunk-2").describe()
    assert chunk.status == WorkflowExecutionStatus.COMPLETED


async def test_a_later_failure_compensates_the_chunks_iterations_in_reverse_order(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-chunks-saga
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: first, uses: test/echo, compensate: {uses: test/echo}}
      - id: each
        uses: flow/loop
        with:
          items: [vm-0, vm-1, vm-2, vm-3, vm-4, vm-5, vm-6]
          max-parallel: 1
          steps:
            - id: create
              uses: test/echo
              with: {vm: $<< loop.item >>}
              compensate: {uses: test/echo, with: {undo: $<< steps.create.outputs.vm >>}}
      - {id: verify, uses: test/fail, with: {message: verify failed}}
"""
    )
    assert isinstance(error, ApplicationError) and "verify failed" in error.message
    undo = [c for c in h.nodes.calls if c.activity_id.endswith(".compensate")]
    expected: list[Any] = [f"j/each[{n}]/create.compensate" for n in range(6, -1, -1)]
    assert [c.activity_id for c in undo] == [*expected, "j/first.compensate"]
    assert [render(c.task.with_, c.task.contexts, "failure") for c in undo[:7]] == [
        {"undo": f"vm-{n}"} for n in range(6, -1, -1)
    ]
    assert all(c.outcome == "success" for c in undo)
    assert [c.id for c in progress.compensations][:2] == ["each[6]/create.compensate", "each[5]/create.compensate"]


async def test_results_budget_spans_chunks(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow, "MAX_LOOP_RESULTS_BYTES", 2000)
    progress, error = await h.run(
        """
name: flow-chunks-budget
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: $<< fromJSON(inputs.items) >>
          steps: [{id: s, uses: test/echo, with: {big: '300'}}]
inputs:
  items: {type: string}
""",
        {"items": json.dumps(list(range(10)))},
    )
    assert isinstance(error, ApplicationError)
    # ~420 bytes per iteration: item 4 passes 2000 bytes, in the second chunk (items 3-5), which
    # got the bytes the first one used.
    assert error.message.startswith("step j/each failed: the results of its iterations passed 1 KiB at item 4;")
    assert len(h.nodes.calls) == 5
    assert step(progress, "j", "each").outputs["count"] == 5


async def test_the_loop_timeout_cancels_the_running_chunk(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-chunks-timeout
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        timeout: 3s
        with:
          items: $<< fromJSON(inputs.items) >>
          steps: [{id: s, uses: test/sleep, with: {seconds: $<< loop.index == 4 && '60' || '0' >>}}]
inputs:
  items: {type: string}
""",
        {"items": json.dumps(list(range(10)))},
    )
    assert isinstance(error, ApplicationError)
    assert error.message == "step j/each timed out after 3s"
    assert [c.outcome for c in h.nodes.by_id("j/each[4]/s")] == ["cancelled"]
    assert not h.nodes.by_id("j/each[5]/s")
    assert step(progress, "j", "each").status == "failure"


async def test_contexts_too_large_for_a_chunk_fail_the_loop_before_it_starts(h: Harness) -> None:
    handle = await h.start(
        """
name: flow-chunks-too-big
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: a, uses: test/echo, with: {big: '600000'}}
      - {id: b, uses: test/echo, with: {big: '600000'}}
      - id: each
        uses: flow/loop
        with:
          items: $<< fromJSON(inputs.items) >>
          steps: [{id: s, uses: test/echo}]
      - {id: cleanup, uses: test/echo, if: always()}
inputs:
  items: {type: string}
""",
        {"items": json.dumps(list(range(10)))},
    )
    progress, error = await h.finish(handle)
    assert isinstance(error, ApplicationError)
    assert error.message.startswith("step j/each failed: a chunk of its iterations would be sent 1.2 MB (")
    assert "over the 1048576 bytes allowed" in error.message
    assert h.nodes.ids() == ["j/a", "j/b", "j/cleanup"]
    assert await chunk_ids(h, handle.id) == []
    assert step(progress, "j", "cleanup").status == "success"


async def test_a_chunk_cancelled_from_outside_fails_the_loop(h: Harness) -> None:
    handle = await h.start(
        """
name: flow-chunks-outside
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: $<< fromJSON(inputs.items) >>
          steps: [{id: s, uses: test/sleep, with: {seconds: $<< loop.index == 1 && '60' || '0' >>}}]
inputs:
  items: {type: string}
""",
        {"items": json.dumps(list(range(10)))},
    )
    await h.wait_running(handle, "j/each[1]/s")
    chunk = f"{handle.result_run_id}/j/each/chunk-1"
    await h.client.get_workflow_handle(chunk).cancel()
    progress, error = await h.finish(handle)
    assert isinstance(error, ApplicationError)
    assert error.message == f"step j/each failed: its chunk 1 ({chunk}) was cancelled"
    assert [c.outcome for c in h.nodes.by_id("j/each[1]/s")] == ["cancelled"]
    assert not h.nodes.by_id("j/each[2]/s")
    assert step(progress, "j", "each").outputs["count"] == 2
