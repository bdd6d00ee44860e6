"""The flow nodes (flow/sleep, flow/condition, flow/loop) run by WaterflowRun on a real Temporal.

Nested steps run on the harness's in-process activity worker (``interpreter_harness.py``), so
each test sees exactly which activities ran, in which order, with which contexts. The runs
marked ``record=...`` are the flow part of the replay corpus (``histories/flow_*.json``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, CancelledError

from waterflow_core.interpreter import flow, steptree
from waterflow_core.runs import PROGRESS_QUERY, RunProgress

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Harness, harness, job, render, step


@pytest.fixture
async def h(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    async for running in harness(temporal_client, task_queue):
        yield running


def ids(progress: RunProgress, job_id: str) -> list[str]:
    return [s.id for s in job(progress, job_id).steps]


# -- flow/loop ---------------------------------------------------------------------------------


async def test_loop_runs_items_in_order_one_at_a_time(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-loop
inputs:
  hosts: {type: array, default: '["web-1", "web-2", "web-3"]'}
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: before
        uses: test/echo
        with: {v: first}
      - id: each
        uses: flow/loop
        name: restart each host
        with:
          items: $<< inputs.hosts >>
          max-parallel: 1
          steps:
            - id: restart
              name: restart $<< loop.item >>
              uses: test/echo
              with: {host: $<< loop.item >>, index: $<< loop.index >>, sleep: '0.2'}
            - id: check
              uses: test/echo
              with:
                seen: $<< steps.restart.outputs.host >>
                outer: $<< steps.before.outputs.v >>
      - id: after
        uses: test/echo
        with:
          hosts: $<< steps.each.outputs.results.*.restart.outputs.host >>
          count: $<< steps.each.outputs.count >>
""",
        record="flow_loop",
    )
    assert error is None, error
    assert h.nodes.ids() == [
        "j/before",
        "j/each[0]/restart", "j/each[0]/check",
        "j/each[1]/restart", "j/each[1]/check",
        "j/each[2]/restart", "j/each[2]/check",
        "j/after",
    ]
    for earlier, later in itertools.pairwise(h.nodes.calls):
        assert later.started >= earlier.ended  # max-parallel 1: strictly one after the other
    restarts = [c for c in h.nodes.calls if c.activity_id.endswith("/restart")]
    assert [c.task.contexts["loop"]["item"] for c in restarts] == ["web-1", "web-2", "web-3"]
    assert [c.task.contexts["loop"]["index"] for c in restarts] == [0, 1, 2]
    assert [c.task.name for c in restarts] == ["restart web-1", "restart web-2", "restart web-3"]
    check = h.nodes.by_id("j/each[1]/check")[0]
    # A nested step sees the earlier steps of its iteration and the steps before the loop.
    assert set(check.task.contexts["steps"]) == {"restart", "before"}
    assert step(progress, "j", "after").outputs == {"hosts": ["web-1", "web-2", "web-3"], "count": 3}
    each = step(progress, "j", "each")
    assert (each.status, each.name, each.uses) == ("success", "restart each host", "flow/loop")
    assert each.log_tail == ["ran 3 of 3 iterations"]
    # The nested steps are listed after their loop, in the order they ran.
    assert ids(progress, "j") == [
        "before", "each",
        "each[0]/restart", "each[0]/check", "each[1]/restart", "each[1]/check", "each[2]/restart", "each[2]/check",
        "after",
    ]
    restart = step(progress, "j", "each[2]/restart")
    assert (restart.status, restart.name, restart.outputs["host"]) == ("success", "restart web-3", "web-3")


async def test_loop_max_parallel_bounds_concurrency_and_keeps_item_order(h: Harness) -> None:
    handle = await h.start(
        """
name: flow-loop-parallel
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: [a, b, c, d, e]
          max-parallel: 2
          steps:
            - {id: s, uses: test/echo, with: {item: $<< loop.item >>, sleep: '0.5'}}
    outputs:
      items: $<< join(steps.each.outputs.results.*.s.outputs.item, ',') >>
"""
    )
    progress, error = await h.finish(handle)
    assert error is None, error
    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == [f"j/each[{i}]/s" for i in range(5)]  # started in item order
    calls = h.nodes.calls
    most = max(sum(1 for c in calls if c.started <= t.started < c.ended) for t in calls)
    assert most == 2
    assert job(progress, "j").outputs == {"items": "a,b,c,d,e"}


async def test_loop_break_if_stops_after_the_iteration(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-loop-break
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: poll
        uses: flow/loop
        with:
          items: [1, 2, 3, 4, 5]
          break-if: steps.probe.outputs.ready == 'yes'
          steps:
            - id: probe
              uses: test/echo
              with: {ready: "$<< loop.item >= 2 && 'yes' || 'no' >>"}
      - {id: after, uses: test/echo, with: {broken: $<< steps.poll.outputs.broken >>}}
"""
    )
    assert error is None, error
    assert h.nodes.ids() == ["j/poll[0]/probe", "j/poll[1]/probe", "j/after"]
    assert step(progress, "j", "after").outputs == {"broken": True}
    assert step(progress, "j", "poll").log_tail == ["ran 2 of 5 iterations", "break-if was true after item 1"]


async def test_a_failing_iteration_fails_the_loop_and_starts_no_other(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-loop-failure
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: [a, b, c]
          steps:
            - id: tolerated
              uses: test/fail
              continue-on-error: true
              with: {message: not fatal}
            - id: work
              uses: test/fail
              if: loop.item == 'b'
              with: {message: broke on $<< loop.item >>}
            - id: cleanup
              uses: test/echo
              if: failure()
              with: {item: $<< loop.item >>, outcome: $<< steps.work.outcome >>}
      - id: report
        uses: test/echo
        if: failure()
        with: {count: $<< steps.each.outputs.count >>}
"""
    )
    assert isinstance(error, ApplicationError)
    assert error.message == "step j/each[1]/work failed: broke on b"
    assert [c for c in h.nodes.ids() if "[2]" in c] == []  # no iteration after the failing one
    assert step(progress, "j", "each[1]/cleanup").outputs == {"item": "b", "outcome": "failure"}
    assert step(progress, "j", "each[0]/work").status == "skipped"
    assert step(progress, "j", "each[0]/tolerated").conclusion == "success"
    each = step(progress, "j", "each")
    assert (each.status, each.error) == ("failure", error.message)
    assert step(progress, "j", "report").outputs == {"count": 2}


async def test_nested_loops_and_a_condition_inside_a_loop(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-nested
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: hosts
        uses: flow/loop
        with:
          items: [web-1, web-2]
          steps:
            - id: services
              uses: flow/loop
              with:
                items: [api, worker]
                steps:
                  - id: restart
                    uses: test/echo
                    with:
                      what: '$<< loop.parent.item >>:$<< loop.item >>'
                      i: '$<< loop.parent.index >>.$<< loop.index >>'
            - id: pick
              uses: flow/condition
              with:
                if: loop.index == 1
                then: [{id: last, uses: test/echo, with: {host: $<< loop.item >>}}]
"""
    )
    assert error is None, error
    assert h.nodes.ids() == [
        "j/hosts[0]/services[0]/restart", "j/hosts[0]/services[1]/restart",
        "j/hosts[1]/services[0]/restart", "j/hosts[1]/services[1]/restart", "j/hosts[1]/pick/last",
    ]
    inner = h.nodes.calls[1].task.contexts["loop"]
    assert (inner["item"], inner["index"]) == ("worker", 1)
    assert (inner["parent"]["item"], inner["parent"]["index"], inner["parent"]["parent"]) == ("web-1", 0, None)
    restarts = [step(progress, "j", f"hosts[{i}]/services[{k}]/restart").outputs for i in (0, 1) for k in (0, 1)]
    assert [r["what"] for r in restarts] == ["web-1:api", "web-1:worker", "web-2:api", "web-2:worker"]
    assert [r["i"] for r in restarts] == ["0.0", "0.1", "1.0", "1.1"]
    assert step(progress, "j", "hosts[0]/pick").outputs["branch"] == "else"


async def test_nested_steps_compensate_in_reverse_order_with_their_loop_item(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-saga
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: [vm-1, vm-2]
          steps:
            - id: create
              uses: test/echo
              with: {vm: $<< loop.item >>}
              compensate: {uses: test/echo, with: {undo: $<< steps.create.outputs.vm >>, i: $<< loop.index >>}}
      - {id: verify, uses: test/fail, with: {message: verify failed}}
""",
        record="flow_saga",
    )
    assert isinstance(error, ApplicationError)
    undo = [c for c in h.nodes.calls if c.activity_id.endswith(".compensate")]
    assert [c.activity_id for c in undo] == ["j/each[1]/create.compensate", "j/each[0]/create.compensate"]
    assert [(c.task.contexts["loop"]["item"], c.outcome) for c in undo] == [("vm-2", "success"), ("vm-1", "success")]
    assert [render(c.task.with_, c.task.contexts, "failure") for c in undo] == [
        {"undo": "vm-2", "i": 1},
        {"undo": "vm-1", "i": 0},
    ]
    assert [c.id for c in progress.compensations] == ["each[1]/create.compensate", "each[0]/create.compensate"]


# -- flow/condition ----------------------------------------------------------------------------


async def test_condition_takes_each_branch(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-condition
inputs:
  env: {type: string, default: prod}
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: prod
        uses: flow/condition
        with:
          if: inputs.env == 'prod'
          then:
            - {id: deploy, uses: test/echo, with: {mode: careful}}
            - {id: notify, uses: test/echo, with: {after: $<< steps.deploy.outputs.mode >>}}
          else:
            - {id: deploy, uses: test/echo, with: {mode: fast}}
      - id: dev
        uses: flow/condition
        with:
          if: $<< inputs.env == 'dev' >>
          then:
            - {id: deploy, uses: test/echo, with: {mode: fast}}
          else:
            - {id: skip, uses: test/echo, with: {mode: none}}
      - id: empty
        uses: flow/condition
        with:
          if: "false"
          then: [{uses: test/echo}]
      - id: after
        uses: test/echo
        with:
          a: $<< steps.prod.outputs.branch >>
          b: $<< steps.dev.outputs.branch >>
          mode: $<< steps.prod.outputs.steps.notify.outputs.after >>
          result: $<< steps.dev.outputs.result >>
""",
        record="flow_condition",
    )
    assert error is None, error
    assert h.nodes.ids() == ["j/prod/deploy", "j/prod/notify", "j/dev/skip", "j/after"]
    assert step(progress, "j", "after").outputs == {"a": "then", "b": "else", "mode": "careful", "result": False}
    assert step(progress, "j", "empty").outputs == {"branch": "else", "result": False, "steps": {}}
    assert step(progress, "j", "prod").log_tail == ["if was true: ran then (2 steps)"]
    assert ids(progress, "j") == ["prod", "prod/deploy", "prod/notify", "dev", "dev/skip", "empty", "after"]


async def test_condition_failure_and_flow_step_if(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-condition-failure
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: first
        uses: flow/condition
        with:
          if: "true"
          then: [{id: boom, uses: test/fail, with: {message: branch failed}}]
      - id: skipped
        uses: flow/condition
        with: {if: "true", then: [{uses: test/echo}]}
      - id: on-failure
        uses: flow/condition
        if: failure()
        with:
          if: steps.first.outputs.steps.boom.outcome == 'failure'
          then: [{id: cleanup, uses: test/echo}]
"""
    )
    assert isinstance(error, ApplicationError)
    assert error.message == "step j/first/boom failed: branch failed"
    assert step(progress, "j", "skipped").status == "skipped"
    # Nested steps start from a clean status: the flow step's own `if` decided that it runs.
    assert step(progress, "j", "on-failure/cleanup").status == "success"
    assert h.nodes.ids() == ["j/first/boom", "j/on-failure/cleanup"]


# -- flow/sleep --------------------------------------------------------------------------------


async def test_sleep_is_a_durable_timer(h: Harness) -> None:
    handle = await h.start(
        """
name: flow-sleep
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: before, uses: test/echo}
      - id: wait
        uses: flow/sleep
        with: {duration: 1s}
      - id: past
        uses: flow/sleep
        with: {until: '2000-01-01T00:00:00Z'}
      - id: after
        uses: test/echo
        with: {until: $<< steps.wait.outputs.until >>, seconds: $<< steps.wait.outputs.seconds >>}
"""
    )
    progress, error = await h.finish(handle, record="flow_sleep")
    assert error is None, error
    assert h.nodes.ids() == ["j/before", "j/after"]
    assert h.nodes.calls[1].started - h.nodes.calls[0].ended >= 1.0
    assert step(progress, "j", "after").outputs["seconds"] == 1.0
    assert step(progress, "j", "past").outputs == {"until": "2000-01-01T00:00:00Z", "seconds": 0.0}
    history = await handle.fetch_history()
    timers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED]
    assert len(timers) == 1  # the past `until` needs no timer
    assert timers[0].timer_started_event_attributes.start_to_fire_timeout.ToSeconds() == 1
    assert timers[0].user_metadata.summary.data == b'"flow/sleep j/wait"'


async def test_cancelling_the_run_cancels_the_sleep(h: Harness) -> None:
    handle = await h.start(
        """
name: flow-sleep-cancel
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: made, uses: test/echo, compensate: {uses: test/echo}}
      - id: wait
        uses: flow/sleep
        with: {duration: 1h}
      - {id: on-cancel, uses: test/echo, if: cancelled()}
"""
    )
    for _ in range(400):
        progress = await handle.query(PROGRESS_QUERY, result_type=RunProgress)
        if step(progress, "j", "wait").status == "running":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the sleep never started")
    await handle.cancel()
    progress, error = await h.finish(handle)
    assert isinstance(error, CancelledError)
    assert step(progress, "j", "wait").status == "cancelled"
    assert step(progress, "j", "on-cancel").status == "success"
    assert [c.activity_id for c in h.nodes.calls] == ["j/made", "j/on-cancel", "j/made.compensate"]


async def test_flow_step_timeout_cancels_what_it_runs(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-timeout
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        timeout: 1s
        with:
          items: [a, b]
          steps: [{id: slow, uses: test/sleep, with: {seconds: '60'}}]
      - {id: after, uses: test/echo, if: always()}
""",
        record="flow_timeout",
    )
    assert isinstance(error, ApplicationError)
    assert error.message == "step j/each timed out after 1s"
    assert h.nodes.by_id("j/each[0]/slow")[0].outcome == "cancelled"
    assert not h.nodes.by_id("j/each[1]/slow")
    assert step(progress, "j", "after").status == "success"


# -- errors and bounds -------------------------------------------------------------------------


async def test_runtime_errors_name_the_place(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-errors
inputs:
  items: {type: string, default: not a list}
  wait: {type: string, default: soon}
jobs:
  a:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with: {items: $<< inputs.items >>, steps: [{uses: test/echo}]}
  b:
    runs-on: QUEUE
    steps:
      - id: wait
        uses: flow/sleep
        with: {duration: $<< inputs.wait >>}
  c:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with: {items: "$<< fromJSON('[1,2]') >>", break-if: "fromJSON('{')", steps: [{uses: test/echo}]}
"""
    )
    assert isinstance(error, ApplicationError)
    assert job(progress, "a").error == 'jobs.a.steps[0].with.items: expected a list, got text "not a list"'
    assert job(progress, "b").error.startswith("jobs.b.steps[0].with.duration: invalid duration 'soon'")
    assert job(progress, "c").error.startswith("jobs.c.steps[0].with.break-if: ")
    assert h.nodes.ids() == ["c/each[0]/step-1"]


async def test_loop_bounds_items_and_results(h: Harness) -> None:
    progress, error = await h.run(
        """
name: flow-bounds
jobs:
  many:
    runs-on: QUEUE
    steps:
      - id: too-many
        uses: flow/loop
        with: {items: $<< fromJSON(inputs.many) >>, steps: [{uses: test/echo}]}
        continue-on-error: true
      - id: big
        uses: flow/loop
        with:
          items: [1, 2, 3]
          steps: [{id: s, uses: test/echo, with: {big: '600000'}}]
inputs:
  many: {type: string}
""",
        {"many": json.dumps(list(range(10_001)))},
    )
    assert isinstance(error, ApplicationError)
    assert error.message == (
        "step many/big failed: the results of its iterations passed 1024 KiB at item 1; "
        "output less from its steps (write big data to a file and output its path)"
    )
    too_many = step(progress, "many", "too-many").error
    assert too_many == "jobs.many.steps[0].with.items: a loop runs at most 10000 items, got 10001"
    assert not h.nodes.by_id("many/too-many[0]/step-1")
    assert len(h.nodes.by_id("many/big[1]/s")) == 1 and not h.nodes.by_id("many/big[2]/s")


async def test_loop_stops_before_the_history_reaches_temporal_limits(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guard reads the real history length; the interpreter module is shared with the
    # workflow sandbox (passed through), so a lower threshold applies to this worker's runs.
    monkeypatch.setattr(flow, "HISTORY_EVENTS_GUARD", 40)
    _, error = await h.run(
        """
name: flow-history
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with: {items: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], steps: [{uses: test/echo}]}
"""
    )
    assert isinstance(error, ApplicationError)
    assert error.message.startswith("step j/each failed: stopped before item ")
    assert "close to Temporal's limits; split the items over several runs" in error.message
    count = len(h.nodes.calls)
    assert 1 <= count < 10
    assert error.message.startswith(f"step j/each failed: stopped before item {count}: the run's history holds ")


async def test_progress_lists_a_bounded_number_of_nested_steps(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steptree, "MAX_NESTED_ENTRIES", 20)  # shared with the sandbox, as above
    progress, error = await h.run(
        """
name: flow-many
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: $<< fromJSON(inputs.items) >>
          max-parallel: 3
          steps: [{id: a, uses: test/echo}, {id: b, uses: test/echo}]
      - {id: after, uses: test/echo, with: {count: $<< steps.each.outputs.count >>}}
inputs:
  items: {type: string}
""",
        {"items": json.dumps(list(range(15)))},
    )
    assert error is None, error
    assert len(h.nodes.calls) == 31
    assert step(progress, "j", "after").outputs == {"count": 15}
    listed = ids(progress, "j")
    nested = [i for i in listed if i.startswith("each[")]
    assert len(nested) == 20  # the oldest 10 finished entries were dropped
    assert listed[:2] == ["each", nested[0]] and listed[-1] == "after"
    assert "each[14]/b" in nested and "each[0]/a" not in nested


async def test_steps_without_commands_cannot_wedge_the_workflow_task(h: Harness) -> None:
    # 300 iterations at once, each 10 conditions that run nothing: no activity, no timer, so all
    # of it would run in one workflow task. Temporal fails a task that runs over 2 s (its
    # deadlock detector) and retries it forever, so a run of enough such steps, or a slow
    # machine, would hang the run and keep the shared worker busy. Pacing ends the task every
    # PACE_EVERY steps: each task does a bounded amount of work.
    condition = "            - {uses: flow/condition, with: {if: 'false', then: [{uses: test/echo}]}}"
    conditions = "\n".join([condition] * 10)
    handle = await h.start(
        f"""
name: flow-pacing
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: $<< fromJSON(inputs.items) >>
          max-parallel: 300
          steps:
{conditions}
inputs:
  items: {{type: string}}
""",
        {"items": json.dumps(list(range(300)))},
    )
    progress, error = await h.finish(handle, record="flow_pacing")
    assert error is None, error
    assert step(progress, "j", "each").outputs["count"] == 300
    assert not h.nodes.calls
    history = await handle.fetch_history()
    pauses = [
        e for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED and e.user_metadata.summary.data == b'"flow pacing"'
    ]
    # One per PACE_EVERY steps (300 x 10 conditions), shared by the iterations waiting for it.
    assert len(pauses) == 300 * 10 // flow.PACE_EVERY
    failed_tasks = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert not failed_tasks


async def test_a_run_runs_a_bounded_number_of_nested_steps(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow, "MAX_RUN_NESTED_STEPS", 3000)  # shared with the sandbox, as above
    _, error = await h.run(
        """
name: flow-nested-bomb
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: outer
        uses: flow/loop
        with:
          items: $<< fromJSON(inputs.items) >>
          steps:
            - id: inner
              uses: flow/loop
              with:
                items: $<< fromJSON(inputs.items) >>
                max-parallel: 1000
                steps: [{uses: flow/condition, with: {if: 'false', then: [{uses: test/echo}]}}]
inputs:
  items: {type: string}
""",
        {"items": json.dumps(list(range(1000)))},
    )
    assert isinstance(error, ApplicationError)
    assert error.message.startswith("step j/outer[")
    assert "the run already ran 3000 nested steps, the most a run may; split the items" in error.message


async def test_steps_nested_too_deep_for_temporal_ids_fail_with_a_message(h: Harness) -> None:
    # Ten nested loops whose ids are 99 characters long: the innermost activity id would pass
    # Temporal's 1000-character limit, which fails the workflow *task* (forever) instead of the run.
    names = [f"l{n}" + "x" * 97 for n in range(10)]
    step_: dict[str, Any] = {"uses": "test/echo"}
    for name in reversed(names):
        step_ = {"id": name, "uses": "flow/loop", "with": {"items": ["1"], "steps": [step_]}}
    steps = json.dumps([step_])  # YAML flow style
    progress, error = await h.run(f"name: flow-deep\njobs:\n  j:\n    runs-on: QUEUE\n    steps: {steps}\n")
    assert isinstance(error, ApplicationError)
    assert "its steps are nested too deep: their paths would pass Temporal's limit on activity ids" in error.message
    assert not h.nodes.calls
    assert step(progress, "j", names[0]).status == "failure"
