"""WaterflowRun end to end on a real Temporal dev server, with a real activity worker.

The harness (test nodes ``test/*``, history recording) is ``interpreter_harness.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, CancelledError

from waterflow_core.dsl import load_workflow
from waterflow_core.interpreter import start_run
from waterflow_core.runs import PROGRESS_QUERY, RunInput, RunProgress

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Harness, activity_worker, harness, job, render, step


@pytest.fixture
async def h(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    async for running in harness(temporal_client, task_queue):
        yield running


# -- DAG ---------------------------------------------------------------------------------------


async def test_dag_order_parallelism_and_outputs(h: Harness) -> None:
    progress, error = await h.run(
        """
name: dag
inputs:
  who: {type: string, default: world}
vars: {greeting: hello $<< inputs.who >>}
jobs:
  a:
    runs-on: QUEUE
    steps:
      - id: first
        uses: test/echo
        with: {value: $<< vars.greeting >>, n: 1}
    outputs: {value: $<< steps.first.outputs.value >>}
  b:
    needs: a
    runs-on: QUEUE
    steps:
      - {id: s, uses: test/echo, with: {sleep: '1', from_a: $<< needs.a.outputs.value >>}}
  c:
    needs: [a]
    runs-on: QUEUE
    steps:
      - {id: s, uses: test/echo, with: {sleep: '1'}}
  d:
    needs: [b, c]
    runs-on: QUEUE
    steps:
      - id: s
        uses: test/echo
        with: {results: '$<< needs.b.result >>,$<< needs.c.result >>'}
""",
        record="dag",
    )
    assert error is None, error
    assert progress.status == "succeeded"
    calls = {c.activity_id: c for c in h.nodes.calls}
    assert set(calls) == {"a/first", "b/s", "c/s", "d/s"}
    # b and c ran concurrently, after a; d after both.
    assert calls["b/s"].started >= calls["a/first"].ended
    assert calls["c/s"].started < calls["b/s"].ended and calls["b/s"].started < calls["c/s"].ended
    assert calls["d/s"].started >= max(calls["b/s"].ended, calls["c/s"].ended)
    # Typed values and contexts sent only as referenced.
    assert calls["a/first"].task.contexts == {"vars": {"greeting": "hello world"}}
    assert calls["b/s"].task.contexts["needs"] == {"a": {"result": "success", "outputs": {"value": "hello world"}}}
    assert job(progress, "a").outputs == {"value": "hello world"}
    assert step(progress, "d", "s").outputs["results"] == "success,success"
    assert step(progress, "a", "first").outputs == {"value": "hello world", "n": "1"}
    assert step(progress, "a", "first").agent == h.nodes.agent
    assert step(progress, "a", "first").queue == h.queue
    assert step(progress, "a", "first").log_tail == ['echo {"n": "1", "value": "hello world"}']
    assert all(s.started_at and s.finished_at for j in progress.jobs for s in j.steps)
    assert progress.started_at and progress.finished_at


async def test_job_if_and_status_functions(h: Harness) -> None:
    progress, error = await h.run(
        """
name: statuses
jobs:
  bad:
    runs-on: QUEUE
    steps: [{uses: test/fail, with: {message: it broke}}]
  dependent:
    needs: bad
    runs-on: QUEUE
    steps: [{uses: test/echo}]
  transitive:
    needs: dependent
    runs-on: QUEUE
    if: failure()
    steps: [{uses: test/echo}]
  on-failure:
    needs: bad
    if: $<< failure() >>
    runs-on: QUEUE
    steps: [{id: report, uses: test/echo, with: {result: $<< needs.bad.result >>}}]
  always:
    needs: [dependent]
    if: always()
    runs-on: QUEUE
    steps: [{id: s, uses: test/echo, with: {dep: $<< needs.dependent.result >>}}]
  guarded:
    if: false
    runs-on: QUEUE
    steps: [{uses: test/echo}]
""",
        record="statuses",
    )
    assert isinstance(error, ApplicationError)
    assert error.type == "WaterflowRunFailed"
    assert error.message == "step bad/step-1 failed: it broke"
    assert progress.status == "failed"
    results = {j.id: j.status for j in progress.jobs}
    assert results == {
        "bad": "failure",
        "dependent": "skipped",
        "transitive": "success",
        "on-failure": "success",
        "always": "success",
        "guarded": "skipped",
    }
    assert step(progress, "on-failure", "report").outputs == {"result": "failure"}
    assert step(progress, "always", "s").outputs == {"dep": "skipped"}
    assert step(progress, "dependent", "step-1").status == "skipped"
    assert step(progress, "bad", "step-1").log_tail == ["about to fail"]


async def test_steps_continue_on_error_and_step_status(h: Harness) -> None:
    progress, error = await h.run(
        """
name: steps
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: may-fail
        uses: test/fail
        continue-on-error: true
      - id: after
        uses: test/echo
        with:
          outcome: $<< steps.may-fail.outcome >>
          conclusion: $<< steps.may-fail.conclusion >>
      - id: not-on-success
        uses: test/echo
        if: failure()
      - id: breaks
        uses: test/fail
        with:
          message: second
      - id: skipped
        uses: test/echo
      - id: cleanup
        uses: test/echo
        if: failure() && steps.breaks.outcome == 'failure'
      - id: finally
        uses: test/echo
        if: $<< always() >>
        with:
          agent: $<< steps.after.agent >>
      - id: conditional
        uses: test/echo
        if: steps.after.outputs.outcome == 'failure'
    outputs:
      outcome: $<< steps.breaks.outcome >>
""",
        record="steps",
    )
    assert isinstance(error, ApplicationError)
    assert error.message == "step j/breaks failed: second"
    statuses = {s.id: (s.status, s.conclusion) for s in job(progress, "j").steps}
    assert statuses == {
        "may-fail": ("failure", "success"),
        "after": ("success", "success"),
        "not-on-success": ("skipped", "skipped"),
        "breaks": ("failure", "failure"),
        "skipped": ("skipped", "skipped"),
        "cleanup": ("success", "success"),
        "finally": ("success", "success"),
        # No status function: success() && (...) is false once the job failed.
        "conditional": ("skipped", "skipped"),
    }
    assert step(progress, "j", "after").outputs == {"outcome": "failure", "conclusion": "success"}
    assert step(progress, "j", "finally").outputs == {"agent": h.nodes.agent}
    assert job(progress, "j").outputs == {"outcome": "failure"}
    assert "not-on-success" not in [c.task.step for c in h.nodes.calls]


async def test_job_continue_on_error_does_not_fail_the_run(h: Harness) -> None:
    progress, error = await h.run(
        """
name: job-continue
jobs:
  flaky:
    runs-on: QUEUE
    continue-on-error: true
    steps: [{uses: test/fail}]
  next:
    needs: flaky
    runs-on: QUEUE
    steps: [{id: s, uses: test/echo, with: {r: $<< needs.flaky.result >>}}]
"""
    )
    assert error is None
    assert progress.status == "succeeded"
    assert job(progress, "flaky").status == "failure"
    assert job(progress, "flaky").conclusion == "success"
    assert step(progress, "next", "s").outputs == {"r": "success"}


async def test_generated_step_ids_do_not_collide(h: Harness) -> None:
    progress, error = await h.run(
        """
name: ids
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {uses: test/echo}
      - {id: step-1, uses: test/echo}
      - {uses: test/echo, name: third one}
"""
    )
    assert error is None
    assert [s.id for s in job(progress, "j").steps] == ["step-1-2", "step-1", "step-3"]
    assert [s.name for s in job(progress, "j").steps] == ["test/echo", "step-1", "third one"]
    assert h.nodes.ids() == ["j/step-1-2", "j/step-1", "j/step-3"]


# -- retries and timeouts ----------------------------------------------------------------------


async def test_retry_until_success(h: Harness) -> None:
    progress, error = await h.run(
        """
name: retry-ok
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: flaky
        uses: test/flaky
        with: {succeed-on: '3'}
        retry: {max-attempts: 3, initial-interval: 100ms, backoff: 1}
""",
        record="retry",
    )
    assert error is None
    assert [c.attempt for c in h.nodes.calls] == [1, 2, 3]
    assert step(progress, "j", "flaky").outputs == {"attempt": 3}
    assert step(progress, "j", "flaky").attempt_errors == ["flaky attempt 1", "flaky attempt 2"]


async def test_retry_exhausted_names_step_and_attempts(h: Harness) -> None:
    progress, error = await h.run(
        """
name: retry-exhausted
defaults: {retry: {max-attempts: 2, initial-interval: 100ms}}
jobs:
  db:
    runs-on: QUEUE
    steps:
      - id: migrate
        uses: test/flaky
        with: {succeed-on: '3'}
"""
    )
    assert isinstance(error, ApplicationError)
    assert error.message == "step db/migrate failed after 2 attempts: flaky attempt 2"
    assert len(h.nodes.calls) == 2
    assert step(progress, "db", "migrate").attempt == 2
    assert step(progress, "db", "migrate").error == error.message
    assert step(progress, "db", "migrate").attempt_errors == ["flaky attempt 1"]
    assert job(progress, "db").error == error.message
    assert progress.error == error.message


async def test_non_retryable_error_types(h: Harness) -> None:
    _, error = await h.run(
        """
name: non-retryable
defaults: {retry: {max-attempts: 5, initial-interval: 100ms}}
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: custom, uses: test/fail, with: {type: Fatal}, retry: {non-retryable: Fatal}, continue-on-error: true}
      - {id: bad-input, uses: test/fail, with: {type: WaterflowBadInput}}
"""
    )
    assert isinstance(error, ApplicationError)
    # One attempt each although max-attempts is 5: a listed type and WaterflowBadInput stop retries.
    assert [c.activity_id for c in h.nodes.calls] == ["j/custom", "j/bad-input"]
    assert error.message == "step j/bad-input failed: boom"


async def test_step_retry_keys_merge_with_defaults(h: Harness) -> None:
    _, error = await h.run(
        """
name: merge-retry
defaults: {retry: {max-attempts: 2, initial-interval: 100ms}}
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: f, uses: test/fail, retry: {non-retryable: [Other]}}
"""
    )
    assert isinstance(error, ApplicationError)
    assert error.message == "step j/f failed after 2 attempts: boom"
    assert len(h.nodes.calls) == 2


async def test_step_timeout(h: Harness) -> None:
    progress, error = await h.run(
        """
name: step-timeout
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: slow, uses: test/sleep, with: {seconds: '30'}, timeout: 1s}
"""
    )
    assert isinstance(error, ApplicationError)
    assert error.message == "step j/slow failed: timed out after 1s"
    assert step(progress, "j", "slow").status == "failure"


async def test_run_timeout_cancels_steps_and_compensates(h: Harness) -> None:
    progress, error = await h.run(
        """
name: run-timeout
timeout: 2s
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: made
        uses: test/echo
        compensate: {uses: test/echo, with: {undo: $<< steps.made.outputs.thing >>}}
        with: {thing: vm-1}
      - {id: slow, uses: test/sleep, with: {seconds: '60'}}
      - {id: cleanup, uses: test/echo, if: cancelled()}
""",
        record="run_timeout",
    )
    assert isinstance(error, ApplicationError)
    assert error.type == "WaterflowRunTimedOut"
    assert error.message == "the run timed out after 2s"
    assert progress.status == "timed_out"
    assert h.nodes.by_id("j/slow")[0].outcome == "cancelled"
    assert step(progress, "j", "slow").status == "cancelled"
    assert step(progress, "j", "cleanup").status == "success"
    assert job(progress, "j").status == "cancelled"
    undo = h.nodes.by_id("j/made.compensate")
    assert len(undo) == 1 and undo[0].task.with_ == {"undo": "$<< steps.made.outputs.thing >>"}
    assert undo[0].task.contexts == {"steps": {"made": {
        "outputs": {"thing": "vm-1"}, "outcome": "success", "conclusion": "success", "agent": h.nodes.agent}}}
    assert undo[0].queue == f"agent:{h.nodes.agent}"
    assert progress.compensations[0].status == "success"


async def test_job_timeout(h: Harness) -> None:
    progress, error = await h.run(
        """
name: job-timeout
jobs:
  j:
    runs-on: QUEUE
    timeout: 1s
    steps:
      - {id: slow, uses: test/sleep, with: {seconds: '60'}}
  other:
    runs-on: QUEUE
    steps: [{id: quick, uses: test/echo}]
"""
    )
    assert isinstance(error, ApplicationError)
    assert error.message == "job j timed out after 1s (in step j/slow)"
    assert job(progress, "j").status == "failure"
    assert job(progress, "other").status == "success"


# -- cancellation and compensation --------------------------------------------------------------


async def test_failure_runs_compensations_in_reverse_completion_order(h: Harness) -> None:
    progress, error = await h.run(
        """
name: saga
jobs:
  infra:
    runs-on: QUEUE
    steps:
      - {id: network, uses: test/echo, compensate: {uses: test/echo, with: {undo: network}}}
      - id: vm
        uses: test/echo
        with: {name: vm-7}
        compensate: {uses: test/echo, name: delete vm, with: {undo: $<< steps.vm.outputs.name >>}}
      - {id: no-undo, uses: test/echo}
  app:
    needs: infra
    runs-on: QUEUE
    steps:
      - {id: deploy, uses: test/echo, compensate: {uses: test/echo, with: {undo: deploy}}}
      - {id: verify, uses: test/fail, with: {message: health check failed}}
""",
        record="saga",
    )
    assert isinstance(error, ApplicationError)
    assert error.message == "step app/verify failed: health check failed"
    undo = [c for c in h.nodes.calls if c.activity_id.endswith(".compensate")]
    assert [c.activity_id for c in undo] == ["app/deploy.compensate", "infra/vm.compensate", "infra/network.compensate"]
    assert render(undo[1].task.with_, undo[1].task.contexts, "failure") == {"undo": "vm-7"}
    assert undo[1].task.status == "failure"
    # Host-sticky: compensations go to the personal queue of the agent that ran the step.
    assert {c.queue for c in undo} == {f"agent:{h.nodes.agent}"}
    assert [(c.job, c.id, c.name, c.status) for c in progress.compensations] == [
        ("app", "deploy.compensate", "compensate deploy", "success"),
        ("infra", "vm.compensate", "delete vm", "success"),
        ("infra", "network.compensate", "compensate network", "success"),
    ]


async def test_cancellation_cancels_running_step_then_compensates(h: Harness) -> None:
    handle = await h.start(
        """
name: cancel
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: made, uses: test/echo, compensate: {uses: test/echo}}
      - {id: slow, uses: test/sleep, with: {seconds: '60', log-on-cancel: 'yes'}}
      - {id: never, uses: test/echo}
      - {id: on-cancel, uses: test/echo, if: cancelled(), with: {status: '$<< cancelled() >>'}}
  after:
    needs: j
    runs-on: QUEUE
    steps: [{id: s, uses: test/echo}]
  cleanup:
    needs: j
    if: always()
    runs-on: QUEUE
    steps:
      - {id: s, uses: test/echo, with: {j: $<< needs.j.result >>}}
"""
    )
    await h.wait_running(handle, "j/slow")
    progress = await handle.query(PROGRESS_QUERY, result_type=RunProgress)
    assert progress.status == "running"
    assert step(progress, "j", "made").status == "success"
    assert step(progress, "j", "slow").status == "running"
    assert step(progress, "j", "never").status == "pending"
    await handle.cancel()
    progress, error = await h.finish(handle, record="cancel")
    assert isinstance(error, CancelledError)
    assert progress.status == "cancelled"
    slow = h.nodes.by_id("j/slow")[0]
    undo = h.nodes.by_id("j/made.compensate")[0]
    on_cancel = h.nodes.by_id("j/on-cancel")[0]
    assert slow.outcome == "cancelled"
    # The step acknowledged its cancellation before anything else ran.
    assert slow.ended <= on_cancel.started <= undo.started
    assert on_cancel.task.status == "cancelled"
    assert step(progress, "j", "on-cancel").outputs == {"status": True}
    assert step(progress, "j", "never").status == "cancelled"
    assert step(progress, "j", "slow").status == "cancelled"
    assert step(progress, "j", "slow").log_tail == ["slept a while", "got cancelled"]
    assert undo.task.status == "cancelled"
    # The compensation is listed after its job's steps as well as run-wide.
    assert [s.id for s in job(progress, "j").steps][-1] == "made.compensate"
    assert job(progress, "j").steps[-1] is not None and job(progress, "j").steps[-1].status == "success"
    assert [(c.id, c.status) for c in progress.compensations] == [("made.compensate", "success")]
    assert not h.nodes.by_id("j/never")
    # A job admitted by always() after the cancellation is a cleanup job: its steps run.
    assert job(progress, "after").status == "cancelled"
    assert job(progress, "cleanup").status == "success"
    assert step(progress, "cleanup", "s").outputs == {"j": "cancelled"}
    assert h.nodes.by_id("cleanup/s")[0].started < undo.started


# -- fan-out -----------------------------------------------------------------------------------


async def test_matrix_include_exclude_max_parallel_and_needs_outputs(h: Harness) -> None:
    progress, error = await h.run(
        """
name: matrix
jobs:
  test:
    runs-on: QUEUE
    strategy:
      matrix:
        os: [linux, mac]
        py: ['3.11', '3.12']
        include: [{os: linux, py: '3.13'}, {os: mac, extra: x}]
        exclude: [{os: mac, py: '3.11'}]
      max-parallel: 1
    steps:
      - id: s
        uses: test/echo
        with: {os: $<< matrix.os >>, py: $<< matrix.py >>, sleep: '0.2'}
    outputs:
      label: $<< matrix.os >>-$<< matrix.py >>
  report:
    needs: test
    runs-on: QUEUE
    steps:
      - id: s
        uses: test/echo
        with:
          all: $<< needs.test.outputs >>
          n: $<< join(needs.test.outputs.*.label, ',') >>
""",
        record="matrix",
    )
    assert error is None, error
    ids = [c.activity_id for c in h.nodes.calls if c.activity_id.startswith("test/")]
    assert ids == ["test/s#linux,3.11", "test/s#linux,3.12", "test/s#mac,3.12,x", "test/s#linux,3.13"]
    calls = [c for c in h.nodes.calls if c.activity_id.startswith("test/")]
    for earlier, later in itertools.pairwise(calls):
        assert later.started >= earlier.ended  # max-parallel 1: strictly one at a time
    report = step(progress, "report", "s")
    assert report.outputs["n"] == "linux-3.11,linux-3.12,mac-3.12,linux-3.13"
    assert report.outputs["all"] == [
        {"label": "linux-3.11"},
        {"label": "linux-3.12"},
        {"label": "mac-3.12"},
        {"label": "linux-3.13"},
    ]
    instances = [j.instance for j in progress.jobs if j.id == "test"]
    assert instances == [None, "linux,3.11", "linux,3.12", "mac,3.12,x", "linux,3.13"]
    assert job(progress, "test").status == "success"
    assert job(progress, "test", "mac,3.12,x").steps[0].id == "s"


async def test_matrix_fail_fast_cancels_siblings(h: Harness) -> None:
    progress, error = await h.run(
        """
name: fail-fast
jobs:
  j:
    runs-on: QUEUE
    strategy:
      matrix: {n: ['1', '2', '3']}
      max-parallel: 2
    steps:
      - {id: s, uses: test/sleep, with: {seconds: '60'}, if: matrix.n != '1'}
      - {id: f, uses: test/fail, with: {message: instance $<< matrix.n >> failed}, if: matrix.n == '1'}
"""
    )
    assert isinstance(error, ApplicationError)
    assert error.message == "step j/f#1 failed: instance 1 failed"
    assert job(progress, "j", "1").status == "failure"
    assert job(progress, "j", "2").status == "cancelled"
    assert job(progress, "j", "3").status == "cancelled"  # never started
    assert h.nodes.by_id("j/s#2")[0].outcome == "cancelled"
    assert not h.nodes.by_id("j/s#3")


async def test_each_server_routes_to_personal_queues(h: Harness, temporal_client: Client) -> None:
    prefix = f"srv-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-b", f"{prefix}-a"]
    h.servers[h.queue] = names
    personal = [activity_worker(temporal_client, f"agent:{n}", h.nodes) for n in names]
    async with personal[0], personal[1]:
        progress, error = await h.run(
            """
name: each-server
jobs:
  web:
    runs-on: QUEUE
    strategy: {each-server: true, max-parallel: 1}
    steps:
      - {id: up, uses: test/echo, with: {on: $<< server.name >>}}
    outputs: {host: $<< steps.up.agent >>}
"""
        )
    assert error is None, error
    # Instances in agent-name order, one at a time, each on its agent's personal queue.
    ordered = sorted(names)
    assert [(c.activity_id, c.queue) for c in h.nodes.calls] == [
        (f"web/up#{ordered[0]}", f"agent:{ordered[0]}"),
        (f"web/up#{ordered[1]}", f"agent:{ordered[1]}"),
    ]
    assert [j.outputs for j in progress.jobs if j.instance] == [{"host": n} for n in ordered]
    assert [j.runs_on for j in progress.jobs if j.instance] == [f"agent:{n}" for n in ordered]


async def test_each_server_without_agents_fails(h: Harness) -> None:
    _, error = await h.run(
        """
name: each-server-empty
jobs:
  web:
    runs-on: QUEUE
    strategy: {each-server: true, wait-for-agents: 1s}
    steps: [{uses: test/echo}]
"""
    )
    assert isinstance(error, ApplicationError)
    assert "no live agent in group" in error.message and "after waiting 1s (strategy.wait-for-agents)" in error.message


# -- runtime expression errors and progress -------------------------------------------------------


async def test_runtime_expression_error_names_the_place(h: Harness) -> None:
    progress, error = await h.run(
        """
name: bad-expression
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: s, uses: test/echo, if: "fromJSON('{nope')"}
"""
    )
    assert isinstance(error, ApplicationError)
    assert error.message.startswith("jobs.j.steps[0].if: ")
    assert step(progress, "j", "s").status == "failure"


async def test_progress_while_running_and_truncated_outputs(h: Harness) -> None:
    handle = await h.start(
        """
name: progress
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: big, uses: test/echo, with: {big: '5000', small: $<< vars.x >>}}
      - {id: wait, uses: test/sleep, with: {seconds: '1'}}
vars: {x: XXXXXXXXXX}
"""
    )
    await h.wait_running(handle, "j/wait")
    progress = await handle.query(PROGRESS_QUERY, result_type=RunProgress)
    assert progress.name == "progress"
    assert job(progress, "j").status == "running"
    assert step(progress, "j", "wait").status == "running"
    assert step(progress, "j", "wait").uses == "test/sleep"
    progress, error = await h.finish(handle)
    assert error is None
    assert progress.status == "succeeded"
    assert job(progress, "j").status == "success"
    big = step(progress, "j", "big").outputs
    assert big["small"] == "XXXXXXXXXX"
    assert big["big"] == "X" * 1024 + "… (5000 chars)"  # truncated in progress only


async def test_duplicate_workflow_id_is_rejected(h: Harness) -> None:
    from temporalio.exceptions import WorkflowAlreadyStartedError

    workflow = load_workflow(
        f"name: dup\njobs:\n  j:\n    runs-on: {h.queue}\n    steps: [{{uses: test/sleep, with: {{seconds: '2'}}}}]\n"
    )
    workflow_id = f"dup-{uuid.uuid4().hex[:8]}"
    run = RunInput.plan(workflow)
    handle = await start_run(h.client, run, workflow_id=workflow_id, task_queue=h.wf_queue)
    with pytest.raises(WorkflowAlreadyStartedError):
        await start_run(h.client, run, workflow_id=workflow_id, task_queue=h.wf_queue)
    await handle.result()
    with pytest.raises(WorkflowAlreadyStartedError):
        await start_run(h.client, run, workflow_id=workflow_id, task_queue=h.wf_queue)


async def test_env_context_and_step_env_templates(h: Harness) -> None:
    progress, error = await h.run(
        """
name: env
env: {A: a, TOKEN: $<< secrets.token >>}
inputs:
  targets: {type: array, default: '["x", "y"]'}
jobs:
  j:
    runs-on: QUEUE
    env: {B: $<< env.A >>-b}
    strategy:
      matrix: {t: $<< inputs.targets >>}
    steps:
      - id: s
        uses: test/echo
        env: {C: $<< matrix.t >>}
        if: env.A == 'a' && env.B == 'a-b' && env.C == matrix.t && env.TOKEN == null
        with: {b: $<< env.B >>, t: $<< matrix.t >>}
"""
    )
    assert error is None, error
    calls = sorted(h.nodes.calls, key=lambda c: c.activity_id)
    assert [c.activity_id for c in calls] == ["j/s#x", "j/s#y"]
    task = calls[0].task
    # env travels merged and unrendered (the agent renders it, with secrets); the contexts
    # hold what with/env reference, without secrets.
    assert task.env == {"A": "a", "TOKEN": "$<< secrets.token >>", "B": "$<< env.A >>-b", "C": "$<< matrix.t >>"}
    assert task.contexts == {"env": {"A": "a", "B": "a-b"}, "matrix": {"t": "x"}}
    assert step(progress, "j", "s", "y").outputs == {"b": "a-b", "t": "y"}


async def test_invalid_run_input_fails_the_run(h: Harness) -> None:
    handle = await h.client.start_workflow(
        "WaterflowRun",
        RunInput(workflow={"name": "broken", "jobs": {"j": {"runs-on": "q"}}}),
        id=f"test-{uuid.uuid4().hex[:12]}",
        task_queue=h.wf_queue,
    )
    progress, error = await h.finish(handle)
    assert isinstance(error, ApplicationError)
    assert error.message.startswith("invalid workflow")
    assert progress.status == "failed"


# -- review: resource bounds -------------------------------------------------------------------


async def test_huge_matrix_fails_fast_instead_of_blocking_the_workflow_task(h: Harness) -> None:
    # 10^8 combinations: building them before checking the limit blocked the workflow task far
    # beyond the deadlock detector's 2 s (and grew memory without bound); the run never ended.
    axes = ", ".join(f"k{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" for i in range(8))
    started = time.monotonic()
    _, error = await h.run(
        f"""
name: huge-matrix
jobs:
  j:
    runs-on: QUEUE
    strategy:
      matrix: {{{axes}}}
    steps: [{{uses: test/echo}}]
"""
    )
    assert isinstance(error, ApplicationError)
    assert "100000000 combinations (limit 256)" in error.message
    assert time.monotonic() - started < 20


async def test_progress_and_result_stay_within_temporal_payload_limits(h: Harness) -> None:
    # 120 instances whose steps fail with a big message and return big outputs: the run's
    # result (its progress) and its failure message must still fit in a Temporal payload (2 MB)
    # so the run fails with its own error, not with a blob-size error from the server.
    _, error = await h.run(
        """
name: big-progress
jobs:
  j:
    runs-on: QUEUE
    strategy:
      matrix: {n: $<< fromJSON(inputs.range) >>}
      fail-fast: false
    steps:
      - id: a
        uses: test/echo
        with:
          big: '2000'
          b: $<< matrix.n >>
      - id: f
        uses: test/fail
        with:
          message: $<< format('{0}{1}', matrix.n, inputs.pad) >>
inputs:
  range: {type: string}
  pad: {type: string}
""",
        {"range": json.dumps(list(range(120))), "pad": "E" * 30_000},
    )
    assert isinstance(error, ApplicationError), error
    assert error.type == "WaterflowRunFailed", (error.type, error.message[:300])
    assert len(error.message) < 64 * 1024


async def test_big_successful_run_still_returns_its_progress(h: Harness) -> None:
    keys = "\n".join(f"          k{i}: $<< inputs.pad >>" for i in range(10))
    handle = await h.start(
        f"""
name: big-success
jobs:
  j:
    runs-on: QUEUE
    strategy:
      matrix: {{n: $<< fromJSON(inputs.range) >>}}
    steps:
      - id: a
        uses: test/echo
        with:
{keys}
inputs:
  range: {{type: string}}
  pad: {{type: string}}
""",
        {"range": json.dumps(list(range(250))), "pad": "P" * 2000},
    )
    result = await asyncio.wait_for(handle.result(), 60)  # 250 x 10 x 1 KB in progress: > 2 MB
    assert result.status == "succeeded"
    assert len(result.model_dump_json()) <= 1024 * 1024
    assert len([j for j in result.jobs if j.instance]) == 250
