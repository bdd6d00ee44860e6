"""The planner (``waterflow plan``): what is known before a run is evaluated, the rest is left
for the run, and secrets are never resolved."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator

import pytest

from waterflow_core.dsl.loader import load_workflow
from waterflow_core.errors import WorkflowValidationError
from waterflow_core.interpreter.fanout import ListedServer
from waterflow_core.plan import Plan, PlannedJob, PlannedStep, ServerLister, dag_order, plan_workflow

pytestmark = pytest.mark.unit

SECRET_VALUE = "s3cret-value-never-shown"

WORKFLOW = """
name: deploy
inputs:
  version: {type: string, required: true}
  dry: {type: boolean, default: false}
  envs: {type: array, default: [staging]}
vars:
  url: https://example.test/$<< inputs.version >>
  late: $<< workflow.id >>
env:
  VERSION: v$<< inputs.version >>
  TOKEN: $<< secrets.TOKEN >>
jobs:
  notify:
    needs: [rollout]
    if: always()
    runs-on: ops
    steps:
      - uses: exec/shell
        with: {command: echo done}
  build:
    runs-on: builders
    strategy:
      matrix: {os: [linux, mac], env: $<< inputs.envs >>}
    steps:
      - id: compile
        name: Build $<< matrix.os >> $<< inputs.version >>
        uses: exec/shell
        with:
          command: make $<< matrix.os >> URL=$<< vars.url >> AUTH=$<< secrets.TOKEN >>
          computed: $<< format('{0}', secrets.TOKEN) >>
          run-id: $<< vars.late >>
  rollout:
    needs: [build]
    runs-on: web
    strategy: {each-server: true, batch: [1, 50%], max-fail-percentage: 20}
    steps:
      - id: up
        uses: exec/shell
        run-as: deploy
        with:
          command: deploy $<< needs.build.outputs.artifact >> on $<< server.name >> ($<< env.VERSION >>)
      - id: smoke
        if: inputs.dry
        uses: exec/shell
        with: {command: smoke}
      - id: report
        if: steps.up.outcome == 'success'
        uses: exec/shell
        with: {command: report}
  cleanup:
    if: $<< inputs.dry >>
    runs-on: ops
    steps:
      - uses: exec/shell
        with: {command: clean}
  after-cleanup:
    needs: cleanup
    runs-on: ops
    steps:
      - uses: exec/shell
        with: {command: after}
"""


@pytest.fixture
def secret_in_environment() -> Iterator[None]:
    """The env secret provider would find this value: the planner must not."""
    os.environ["WATERFLOW_SECRET_TOKEN"] = SECRET_VALUE
    yield
    del os.environ["WATERFLOW_SECRET_TOKEN"]


def _servers(names: dict[str, bool]) -> ServerLister:
    async def servers(group: str) -> list[ListedServer]:
        return [ListedServer(name=name, live=live) for name, live in names.items()] if group == "web" else []

    return servers


def _plan(inputs: dict[str, object], servers: ServerLister | None = None, text: str = WORKFLOW) -> Plan:
    return asyncio.run(plan_workflow(load_workflow(text), inputs, servers))


def _job(plan: Plan, job_id: str) -> PlannedJob:
    return next(job for job in plan.jobs if job.id == job_id)


def _step(job: PlannedJob, step_id: str, instance: int = 0) -> PlannedStep:
    instances = [i for batch in job.batches for i in batch.instances]
    return next(step for step in instances[instance].steps if step.id == step_id)


def test_jobs_come_after_their_needs() -> None:
    plan = _plan({"version": "1.2"})
    assert [job.id for job in plan.jobs] == ["build", "cleanup", "rollout", "after-cleanup", "notify"]
    assert dag_order(load_workflow(WORKFLOW)) == [job.id for job in plan.jobs]


def test_known_expressions_are_evaluated_and_run_state_is_left_for_the_run() -> None:
    plan = _plan({"version": "1.2"})
    assert plan.inputs == {"version": "1.2", "dry": False, "envs": ["staging"]}
    assert plan.vars == {"url": "https://example.test/1.2", "late": "$<< workflow.id >>"}
    build = _job(plan, "build")
    assert [(i.label, i.matrix) for b in build.batches for i in b.instances] == [
        ("linux,staging", {"os": "linux", "env": "staging"}),
        ("mac,staging", {"os": "mac", "env": "staging"}),
    ]
    compile_mac = _step(build, "compile", 1)
    assert compile_mac.name == "Build mac 1.2"
    assert compile_mac.with_["command"] == "make mac URL=https://example.test/1.2 AUTH=<secret TOKEN>"
    # Only the run knows its id; a secret that an expression computes with is the agent's to compute.
    assert compile_mac.with_["run-id"] == "$<< vars.late >>"
    assert compile_mac.with_["computed"] == "$<< format('{0}', secrets.TOKEN) >>"
    assert compile_mac.at_run_time == ["with.computed", "with.run-id"]
    assert compile_mac.env == {"VERSION": "v1.2", "TOKEN": "<secret TOKEN>"}

    up = _step(_job(plan, "rollout"), "up")
    # The known expression of a text is evaluated, the others kept as written.
    assert up.with_["command"] == "deploy $<< needs.build.outputs.artifact >> on $<< server.name >> (v1.2)"
    assert up.at_run_time == ["with.command"]
    assert up.run_as == "deploy"


def test_conditions_known_now_are_decided_the_others_by_the_run() -> None:
    plan = _plan({"version": "1.2"})
    rollout = _job(plan, "rollout")
    assert (_step(rollout, "smoke").decision, _step(rollout, "smoke").reason) == ("skipped", "if: inputs.dry is false")
    assert _step(rollout, "report").decision == "at run time"
    assert _step(rollout, "up").decision == "runs"
    assert (_job(plan, "cleanup").decision, _job(plan, "cleanup").batches) == ("skipped", [])
    assert _job(plan, "after-cleanup").decision == "skipped"
    assert _job(plan, "after-cleanup").reason == "needs cleanup, which is skipped"
    assert _job(plan, "notify").decision == "at run time"  # always(): a status function

    dry = _plan({"version": "1.2", "dry": "true"})
    assert _step(_job(dry, "rollout"), "smoke").decision == "runs"
    assert _job(dry, "cleanup").decision == "runs" and _job(dry, "after-cleanup").decision == "runs"


def test_each_server_lists_the_servers_in_batches() -> None:
    plan = _plan({"version": "1.2"}, _servers({"web-3": True, "web-1": True, "web-2": False, "web-4": True}))
    rollout = _job(plan, "rollout")
    assert plan.live_servers and rollout.batch == [1, "50%"] and rollout.max_fail_percentage == 20
    batches = [[(i.server, i.live) for i in batch.instances] for batch in rollout.batches]
    # batch_sizes([1, 50%], 4) = [1, 2, 1]: the interpreter's own sizing.
    assert batches == [[("web-1", True)], [("web-2", False), ("web-3", True)], [("web-4", True)]]
    assert _job(plan, "notify").servers == []  # no server of group ops


def test_a_local_plan_resolves_servers_at_run_time() -> None:
    plan = _plan({"version": "1.2"})
    rollout = _job(plan, "rollout")
    assert not plan.live_servers
    assert rollout.servers_note == "servers of group web: resolved at run time"
    assert [len(b.instances) for b in rollout.batches] == [1]
    assert _job(plan, "build").servers is None


def test_secrets_are_never_resolved(secret_in_environment: None) -> None:
    plan = _plan({"version": "1.2"}, _servers({"web-1": True}))
    text = json.dumps(plan.model_dump(mode="json", by_alias=True))
    assert SECRET_VALUE not in text
    assert "<secret TOKEN>" in text


def test_a_matrix_read_from_run_state_and_a_failing_provider() -> None:
    text = """
name: m
jobs:
  a:
    runs-on: g
    steps: [{uses: exec/shell, with: {command: x}}]
  b:
    needs: a
    runs-on: g
    strategy: {matrix: {n: $<< fromJSON(needs.a.outputs.list) >>}}
    steps: [{uses: exec/shell, with: {command: 'n=$<< matrix.n >>'}}]
  c:
    runs-on: g
    strategy: {each-server: true}
    steps: [{uses: exec/shell, with: {command: x}}]
"""

    async def broken(group: str) -> list[ListedServer]:
        raise RuntimeError("inventory unreadable")

    plan = _plan({}, broken, text)
    b = _job(plan, "b")
    assert b.servers_note == "matrix: resolved at run time"
    assert _step(b, "step-1").at_run_time == ["with.command"]
    assert _job(plan, "c").error == "cannot list the servers of group 'g': inventory unreadable"


def test_bad_inputs_are_refused_by_name() -> None:
    with pytest.raises(WorkflowValidationError, match="version"):
        _plan({})
