"""``flow/approval`` run by WaterflowRun on a real Temporal: approve, reject, timeout, cancel,
refused signals; and the run events the workflow emits (ids stable, nothing re-published on replay).

Signals are sent the way the API sends them (``SIGNAL`` with a :class:`SignalPayload`), but
straight to Temporal: these tests check the workflow's own checks, which must hold even when
someone with access to Temporal bypasses the API.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import Replayer

from waterflow_core import events
from waterflow_core.dsl import load_workflow
from waterflow_core.errors import WorkflowValidationError
from waterflow_core.interpreter import chunks, flow
from waterflow_core.interpreter.approval import check_answer
from waterflow_core.interpreter.workflow import WaterflowRun
from waterflow_core.runs import GATES_QUERY, PROGRESS_QUERY, SIGNAL, RunProgress, SignalPayload, WaitingFor
from waterflow_core.temporal import sandboxed_runner

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Harness, harness, step


@pytest.fixture
async def h(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    async for running in harness(temporal_client, task_queue):
        yield running


class Collected:
    """A sink keeping every published event (events are published from worker threads)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, event: Mapping[str, Any]) -> None:
        with self._lock:
            self.events.append(dict(event))

    def of(self, workflow_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["workflow_id"] == workflow_id]


@pytest.fixture
def sink() -> Iterator[Collected]:
    collected = Collected()
    events.install_sink(collected)
    yield collected
    events.uninstall_sink(collected)


GATE = """
name: gate
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: before, uses: test/echo, compensate: {uses: test/echo}}
      - id: approve
        uses: flow/approval
        with:
          signal: go-live
          approvers: [alice, bob]
          message: Deploy $<< inputs.version >>?
          inputs:
            reason: {type: string, required: true}
            replicas: {type: number, default: '2'}
      - id: after
        uses: test/echo
        with:
          by: $<< steps.approve.outputs.by >>
          reason: $<< steps.approve.outputs.data.reason >>
          replicas: $<< steps.approve.outputs.data.replicas >>
      - {id: on-failure, uses: test/echo, if: failure()}
      - {id: on-cancel, uses: test/echo, if: cancelled()}
inputs:
  version: {type: string, default: '1.2'}
"""


async def waiting(handle: WorkflowHandle[Any, RunProgress]) -> list[WaitingFor]:
    """The gates the run waits at, once it waits at one."""
    for _ in range(400):
        gates = await handle.query(GATES_QUERY, result_type=list[WaitingFor])
        if gates:
            return gates
        await asyncio.sleep(0.05)
    raise AssertionError("the run never waited at a gate")


async def send(handle: WorkflowHandle[Any, RunProgress], name: str, by: str, **kwargs: Any) -> None:
    await handle.signal(SIGNAL, SignalPayload(name=name, by=by, **kwargs))


async def refused(handle: WorkflowHandle[Any, RunProgress], count: int) -> list[str]:
    for _ in range(200):
        gates = await handle.query(GATES_QUERY, result_type=list[WaitingFor])
        if gates and len(gates[0].refused) >= count:
            return gates[0].refused
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} signals were refused")


async def test_an_approval_from_an_approver_continues_the_run_and_bad_signals_are_ignored(
    h: Harness, sink: Collected
) -> None:
    handle = await h.start(GATE)
    [gate] = await waiting(handle)
    assert gate.step == "j/approve" and gate.signal == "go-live" and gate.approvers == ["alice", "bob"]
    assert gate.message == "Deploy 1.2?" and gate.deadline is None
    assert gate.inputs == {"reason": {"type": "string", "required": True}, "replicas": {"type": "number", "default": 2}}
    progress = await handle.query(PROGRESS_QUERY, result_type=RunProgress)
    shown = step(progress, "j", "approve")
    assert shown.status == "running" and shown.waiting == gate

    # Each is ignored and recorded; none fails the run.
    await send(handle, "go-live", "mallory", data={"reason": "x"})
    await send(handle, "go-live", "", data={"reason": "x"})
    await send(handle, "go-live", "alice", data={"replicas": "many"})
    await send(handle, "go-live", "alice", decision="maybe", data={"reason": "x"})
    await send(handle, "other", "alice", data={"reason": "x"})
    # Payloads that are not a SignalPayload at all are dropped by the SDK, the task unharmed.
    await handle.signal(SIGNAL, {"name": "go-live", "by": "alice", "data": [1]})
    await handle.signal(SIGNAL, "approve")
    notes = await refused(handle, 4)
    assert notes[0] == 'token "mallory" is not among the approvers (alice, bob)'
    assert notes[1] == "a caller without an API token is not among the approvers (alice, bob)"
    assert "data.reason: required to approve" in notes[2] and "data.replicas: expected a number" in notes[2]
    assert notes[3].startswith("decision: must be 'approve' or 'reject'")

    assert len(await refused(handle, 4)) == 4
    await send(handle, "go-live", "bob", data={"reason": "hotfix"})
    progress, error = await h.finish(handle, record="flow_approval")
    assert error is None, error
    gate_step = step(progress, "j", "approve")
    assert gate_step.status == "success" and gate_step.waiting is None
    assert gate_step.outputs["decision"] == "approved" and gate_step.outputs["by"] == "bob"
    assert gate_step.log_tail[-1] == "approved by bob (signal go-live)"
    assert h.nodes.ids() == ["j/before", "j/after"]
    assert step(progress, "j", "after").outputs == {"by": "bob", "reason": "hotfix", "replicas": 2}

    # Run events: in order, ids numbered, the gate's step.waiting with what it waits for.
    emitted = sink.of(handle.id)
    kinds = [(e["type"], e.get("step")) for e in emitted]
    assert kinds == [
        ("run.started", None),
        ("step.started", "before"),
        ("step.finished", "before"),
        ("step.started", "approve"),
        ("step.waiting", "approve"),
        ("step.finished", "approve"),
        ("step.started", "after"),
        ("step.finished", "after"),
        ("step.finished", "on-failure"),
        ("step.finished", "on-cancel"),
        ("run.succeeded", None),
    ]
    run_id = emitted[0]["run_id"]
    assert [e["id"] for e in emitted] == [f"{handle.id}/{run_id}/{n}" for n in range(1, 12)]
    waiting_event = emitted[4]
    assert waiting_event["signal"] == "go-live" and waiting_event["approvers"] == ["alice", "bob"]
    assert waiting_event["path"] == "j/approve" and waiting_event["kind"] == "step"
    assert waiting_event["deadline"] is None
    assert emitted[8]["status"] == "skipped"
    finished = emitted[-1]
    assert finished["status"] == "succeeded" and finished["error"] is None
    assert finished["ts"].endswith("Z") and finished["finished_at"].endswith("Z") and finished["name"] == "gate"
    assert emitted[2]["agent"] == h.nodes.agent and emitted[2]["uses"] == "test/echo"

    # Replaying the history (a worker restart) publishes nothing again.
    before = len(sink.events)
    replayer = Replayer(
        workflows=[WaterflowRun], data_converter=pydantic_data_converter, workflow_runner=sandboxed_runner()
    )
    result = await replayer.replay_workflow(await handle.fetch_history(), raise_on_replay_failure=False)
    assert result.replay_failure is None
    assert len(sink.events) == before


async def test_a_rejection_fails_the_step_and_compensates(h: Harness, sink: Collected) -> None:
    handle = await h.start(GATE)
    await waiting(handle)
    await send(handle, "go-live", "alice", decision="reject")  # a rejection needs no required field
    progress, error = await h.finish(handle)
    assert isinstance(error, ApplicationError)
    assert error.message == "step j/approve was rejected by alice (signal go-live)"
    outputs = step(progress, "j", "approve").outputs
    assert outputs["decision"] == "rejected" and outputs["approved"] is False
    assert step(progress, "j", "on-failure").status == "success"
    assert step(progress, "j", "after").status == "skipped"
    assert [c.activity_id for c in h.nodes.calls] == ["j/before", "j/on-failure", "j/before.compensate"]
    emitted = sink.of(handle.id)
    compensation = [e for e in emitted if e.get("kind") == "compensation"]
    assert [(e["type"], e["step"], e.get("status")) for e in compensation] == [
        ("step.started", "before.compensate", None),
        ("step.finished", "before.compensate", "success"),
    ]
    assert emitted[-1]["type"] == "run.failed" and emitted[-1]["error"].startswith("step j/approve was rejected")


async def test_an_unanswered_gate_fails_at_its_timeout(h: Harness) -> None:
    progress, error = await h.run(
        """
name: gate-timeout
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: wait, uses: flow/approval, with: {timeout: 1s}}
      - {id: cleanup, uses: test/echo, if: always()}
"""
    )
    assert isinstance(error, ApplicationError)
    assert error.message == "step j/wait was not approved within 1s: nobody answered signal wait"
    gate = step(progress, "j", "wait")
    assert gate.status == "failure" and gate.outputs["decision"] == "timed_out" and gate.waiting is None
    assert step(progress, "j", "cleanup").status == "success"


async def test_cancelling_the_run_while_it_waits(h: Harness, sink: Collected) -> None:
    handle = await h.start(GATE)
    await waiting(handle)
    await handle.cancel()
    progress, error = await h.finish(handle)
    assert isinstance(error, CancelledError)
    assert step(progress, "j", "approve").status == "cancelled"
    assert step(progress, "j", "on-cancel").status == "success"
    assert [c.activity_id for c in h.nodes.calls] == ["j/before", "j/on-cancel", "j/before.compensate"]
    assert await handle.query(GATES_QUERY, result_type=list[WaitingFor]) == []
    assert sink.of(handle.id)[-1]["type"] == "run.cancelled"


async def test_one_signal_answers_every_instance_waiting_for_it(h: Harness) -> None:
    handle = await h.start(
        """
name: gate-matrix
jobs:
  j:
    runs-on: QUEUE
    strategy: {matrix: {env: [a, b]}}
    steps:
      - {id: ok, uses: flow/approval, with: {signal: 'ok-$<< matrix.env >>', timeout: 1h}}
      - {id: shared, uses: flow/approval}
"""
    )
    for _ in range(400):
        gates = await handle.query(GATES_QUERY, result_type=list[WaitingFor])
        if len(gates) == 2:
            break
        await asyncio.sleep(0.05)
    assert sorted(g.signal for g in gates) == ["ok-a", "ok-b"]
    assert all(g.deadline is not None for g in gates)
    await send(handle, "ok-a", "")
    await send(handle, "ok-b", "")
    for _ in range(400):
        gates = await handle.query(GATES_QUERY, result_type=list[WaitingFor])
        if len(gates) == 2 and {g.signal for g in gates} == {"shared"}:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the instances did not both reach the shared gate: {gates}")
    await send(handle, "shared", "ops")
    progress, error = await h.finish(handle)
    assert error is None, error
    assert [s.outputs["by"] for s in progress.jobs[1].steps if s.id == "shared"] == ["ops"]


async def test_a_gate_in_a_loop_waits_once_per_item_and_rejection_can_continue(h: Harness) -> None:
    handle = await h.start(
        """
name: gate-loop
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: [web-1, web-2]
          steps:
            - id: ok
              uses: flow/approval
              continue-on-error: true
              with: {signal: 'restart-$<< loop.item >>', message: 'restart $<< loop.item >>?'}
            - {id: restart, uses: test/echo, if: steps.ok.outputs.approved, with: {host: $<< loop.item >>}}
"""
    )
    [first] = await waiting(handle)
    assert (first.signal, first.message, first.step) == ("restart-web-1", "restart web-1?", "j/each[0]/ok")
    await send(handle, "restart-web-1", "ops", decision="reject")
    for _ in range(400):
        gates = await handle.query(GATES_QUERY, result_type=list[WaitingFor])
        if gates and gates[0].signal == "restart-web-2":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the second iteration never waited")
    await send(handle, "restart-web-2", "ops")
    progress, error = await h.finish(handle)
    assert error is None, error
    assert h.nodes.ids() == ["j/each[1]/restart"]
    results = step(progress, "j", "each").outputs["results"]
    assert [r["ok"]["outputs"]["decision"] for r in results] == ["rejected", "approved"]
    assert [r["ok"]["conclusion"] for r in results] == ["success", "success"]


async def test_a_gate_in_a_chunked_loop_fails_with_a_message(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    # Loops over more than MAX_INLINE_ITEMS run in child workflows, which the API cannot signal.
    monkeypatch.setattr(flow, "MAX_INLINE_ITEMS", 2)
    monkeypatch.setattr(chunks, "CHUNK_ITEMS", 2)
    _, error = await h.run(
        """
name: gate-chunks
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: each
        uses: flow/loop
        with:
          items: [a, b, c]
          steps: [{id: ok, uses: flow/approval}]
"""
    )
    assert isinstance(error, ApplicationError)
    assert "jobs.j.steps[0].with.steps[0]: flow/approval cannot run inside a loop over more than 1000 items" in (
        error.message
    )


def test_answers_are_checked_like_inputs() -> None:
    workflow = load_workflow(
        """
name: g
jobs:
  j:
    runs-on: local
    steps:
      - uses: flow/approval
        with:
          inputs:
            n: {type: number, required: true}
            mode: {type: string, options: [fast, safe]}
            flag: {type: boolean, default: 'false'}
"""
    )
    gate = workflow.jobs["j"].steps[0].flow
    specs = gate.inputs  # type: ignore[union-attr]
    assert check_answer(specs, "approve", {"n": "3", "mode": "safe"}) == ({"n": 3, "mode": "safe", "flag": False}, [])
    _, problems = check_answer(specs, "approve", {"mode": "quick", "x": 1})
    assert problems == [
        ("data.x", "unknown field (this gate's fields: n, mode, flag)"),
        ("data.n", "required to approve"),
        ("data.mode", "expected one of fast, safe, got 'quick'"),
    ]
    assert check_answer(specs, "reject", {})[1] == []
    big = {"n": 1, "mode": "x" * 70_000}
    assert check_answer(specs, "approve", big)[1] == [("data", "is 70017 bytes of JSON, more than 65536")]


@pytest.mark.parametrize(
    ("with_", "message"),
    [
        ("{signal: 'a b'}", "signal name 'a b' may only use letters"),
        ("{approvers: ['al ice']}", "approver 'al ice' is not an API token name"),
        ("{timeout: soon}", "with.timeout invalid duration 'soon'"),
        ("{inputs: {bad key: {type: string}}}", "'bad key' is not a valid identifier"),
        ("{inputs: {x: {type: date}}}", "inputs.x.type"),
        ("{nope: 1}", "nope"),
    ],
)
def test_a_bad_gate_is_refused_at_submit_with_its_place(with_: str, message: str) -> None:
    text = f"""
name: g
jobs:
  j:
    runs-on: local
    steps:
      - uses: flow/approval
        with: {with_}
"""
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(text)
    [problem] = caught.value.errors
    assert problem.line == 8, problem
    assert message in f"{problem.path} {problem.message}", problem


def test_a_gate_needs_no_with_and_refuses_activity_keys() -> None:
    ok = load_workflow("name: g\njobs:\n  j:\n    runs-on: local\n    steps:\n      - {id: g, uses: flow/approval}\n")
    assert ok.jobs["j"].steps[0].flow is not None
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(
            "name: g\njobs:\n  j:\n    runs-on: local\n    steps:\n"
            "      - {id: g, uses: flow/approval, retry: {max-attempts: 2}}\n"
        )
    assert "'retry' does not apply to flow/approval" in str(caught.value)
