"""The flow nodes as the registry, the server's checks and the agents see them.

What they do is tested with the interpreter (waterflow-core's test_interpreter_flow.py and the
e2e tests in tests/test_e2e_flow_*.py); here: they are registered through the package's entry
point as workflow-side nodes with the DSL's own ``with:`` models, their ``with:`` is checked like
any node's, and an agent never announces or runs them.
"""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from waterflow_core.agent_registry import list_agents
from waterflow_core.dsl import load_workflow
from waterflow_core.dsl.models import FlowApprovalWith, FlowConditionWith, FlowLoopWith, FlowSleepWith, step_targets
from waterflow_core.node import NodeContext
from waterflow_core.plugins import PluginManager
from waterflow_core.registry import NodeRegistry
from waterflow_node_flow import ApprovalNode, ConditionNode, LoopNode, SleepNode
from waterflow_testing import StartAgent, eventually, unique_name
from waterflow_testing.harness import StepHarness, make_step

REGISTRY = NodeRegistry.from_plugins(PluginManager(strict=False))


def test_the_entry_point_registers_four_workflow_side_nodes() -> None:
    flow = {entry["type"]: entry for entry in REGISTRY.catalog() if entry["type"].startswith("flow/")}
    assert sorted(flow) == ["flow/approval", "flow/condition", "flow/loop", "flow/sleep"]
    assert all(entry["workflow_side"] and entry["version"] == "1.0.0" for entry in flow.values())
    assert REGISTRY.entry("flow/loop@1").plugin.distribution == "waterflow-node-flow"
    assert (REGISTRY.get("flow/sleep"), REGISTRY.get("flow/condition"), REGISTRY.get("flow/loop")) == (
        SleepNode, ConditionNode, LoopNode
    )
    # The published with: schema is the DSL's, nested steps included.
    assert (SleepNode.Inputs, ConditionNode.Inputs, LoopNode.Inputs) == (FlowSleepWith, FlowConditionWith, FlowLoopWith)
    loop = flow["flow/loop"]["inputs_schema"]
    assert set(loop["properties"]) == {"items", "steps", "max-parallel", "break-if"}
    assert loop["required"] == ["items", "steps"]
    assert "Step" in loop["$defs"]
    assert set(flow["flow/loop"]["outputs_schema"]["properties"]) == {"results", "count", "broken"}
    assert set(flow["flow/condition"]["inputs_schema"]["properties"]) == {"if", "then", "else"}
    assert REGISTRY.get("flow/approval") is ApprovalNode and ApprovalNode.Inputs is FlowApprovalWith
    approval = flow["flow/approval"]["inputs_schema"]
    assert set(approval["properties"]) == {"signal", "timeout", "approvers", "inputs", "message"}
    assert "required" not in approval
    assert set(flow["flow/approval"]["outputs_schema"]["properties"]) == {
        "decision", "approved", "by", "at", "signal", "data"
    }


def test_the_registry_checks_a_flow_with_like_any_node() -> None:
    problems = REGISTRY.check_with("flow/loop", {"items": "$<< inputs.x >>", "steps": [{"uses": "x/y"}], "nope": 1})
    assert [(tuple(p.path), p.on) for p in problems] == [(("nope",), "key")]
    assert REGISTRY.check_with("flow/sleep@1", {"duration": "$<< inputs.wait >>"}) == []


def test_nested_steps_are_validated_against_their_nodes() -> None:
    workflow = load_workflow(
        """
name: nested
jobs:
  j:
    runs-on: local
    steps:
      - uses: flow/loop
        with:
          items: [a]
          steps:
            - {uses: exec/shell, with: {comand: 'echo'}}
"""
    )
    problems = [
        (path, problem.message)
        for path, target in step_targets(workflow)
        for problem in REGISTRY.check_with(target.uses, target.with_)
    ]
    assert {path for path, _ in problems} == {("jobs", "j", "steps", 0, "with", "steps", 0)}
    assert any("comand" in message for _, message in problems)


async def test_run_refuses_outside_the_workflow() -> None:
    with pytest.raises(ApplicationError) as raised:
        await SleepNode().run(NodeContext(), FlowSleepWith.model_validate({"duration": "1s"}))
    assert raised.value.type == "WaterflowUnknownNode" and raised.value.non_retryable
    assert raised.value.message == "flow/sleep runs inside the workflow, not on agents"


async def test_an_agent_neither_announces_nor_runs_flow_nodes(
    start_agent: StartAgent, step_harness: StepHarness, temporal_client: Client, task_queue: str
) -> None:
    agent = start_agent(unique_name("flow"), [task_queue])
    agents = await eventually(
        lambda: list_agents(temporal_client), lambda found: agent.name in {a.name for a in found}
    )
    types = {node.type for node in next(a for a in agents if a.name == agent.name).nodes}
    assert "exec/shell" in types
    assert not {t for t in types if t.startswith("flow/")}
    with pytest.raises(WorkflowFailureError) as raised:
        await step_harness.run(make_step("flow/sleep", {"duration": "1s"}), task_queue)
    cause = raised.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "WaterflowUnknownNode"
    assert "flow/sleep runs inside the workflow, not on agents" in cause.cause.message
