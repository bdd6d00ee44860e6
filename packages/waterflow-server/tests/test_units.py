"""Pure pieces: page tokens, status mapping, log de-duplication, the node checker."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus

from waterflow_core.agent_registry import AgentInfo, NodeInfo
from waterflow_core.runs import JobProgress, RunProgress, StepProgress
from waterflow_server.api.logs import LogTracker, snapshot_entries
from waterflow_server.api.nodes import catalog, node_checker, unchecked_types
from waterflow_server.api.pagination import PageToken
from waterflow_server.api.runs import check_run_id, new_run_id
from waterflow_server.api.status import api_status, parse_status_filter, visibility_query


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    for token in (PageToken(), PageToken(b"\x00\xffopaque", 3), PageToken(None, 7)):
        assert PageToken.decode(token.encode()) == token
    assert PageToken.decode(None) == PageToken()
    for bad in ("x", "!!!", PageToken(b"t", 0).encode()[:-3] + "???"):
        with pytest.raises(ValueError):
            PageToken.decode(bad)


def test_status_mapping_and_filters() -> None:
    assert api_status(WorkflowExecutionStatus.COMPLETED) == "succeeded"
    assert api_status(WorkflowExecutionStatus.TERMINATED) == "failed"
    assert api_status(WorkflowExecutionStatus.CANCELED) == "cancelled"
    assert parse_status_filter("running, failed,running") == ["running", "failed"]
    with pytest.raises(ValueError, match="expected one of"):
        parse_status_filter("done")
    query = visibility_query(["failed"])
    assert "WorkflowType = 'WaterflowRun'" in query
    assert "ExecutionStatus = 'Failed' OR ExecutionStatus = 'Terminated'" in query


def test_run_ids() -> None:
    assert new_run_id("Deploy the Stack!").startswith("deploy-the-stack-")
    check_run_id("release-2024.11_01:eu")
    with pytest.raises(Exception, match="reserved"):
        check_run_id("waterflow-agent:x")


def _progress(status: str, tail: list[str]) -> RunProgress:
    step = StepProgress(id="s", status=status, log_tail=tail, agent="a1")  # type: ignore[arg-type]
    return RunProgress(name="n", jobs=[JobProgress(id="j", steps=[step])])


def test_log_tracker_emits_each_line_once() -> None:
    tracker = LogTracker()
    entries = tracker.from_progress(_progress("running", []))
    assert [(e.kind, e.status) for e in entries] == [("step", "running")]
    assert [e.line for e in tracker.from_heartbeat("j/s", {"lines": ["a", "b"], "count": 2})] == ["a", "b"]
    assert tracker.from_heartbeat("j/s", {"lines": ["a", "b"], "count": 2}) == []
    assert [e.line for e in tracker.from_heartbeat("j/s", {"lines": ["b", "c", "d"], "count": 4})] == [
        "c",
        "d",
    ]
    # Lines that scrolled out of the heartbeat window are reported as skipped, not lost silently.
    gap = [e.line for e in tracker.from_heartbeat("j/s", {"lines": ["x", "y"], "count": 10})]
    assert gap[0].startswith("... 4 line(s)") and gap[1:] == ["x", "y"]
    final = tracker.from_progress(_progress("success", ["x", "y", "z"]))
    assert [e.line for e in final if e.kind == "log"] == ["z"]
    assert final[-1].kind == "step" and final[-1].status == "success"
    assert tracker.from_progress(_progress("success", ["x", "y", "z"])) == []


def test_snapshot_of_a_finished_step() -> None:
    entries = snapshot_entries(_progress("failure", ["boom"]))
    assert [(e.kind, e.line) for e in entries] == [("log", "boom"), ("step", "failure on a1")]


def test_node_checker_knows_local_and_agent_nodes() -> None:
    from waterflow_server.api.nodes import load_local_registry

    registry = load_local_registry()
    agents = [
        AgentInfo(name="a1", groups=["g", "web"], nodes=[NodeInfo(type="custom/thing", version="2.1.0")]),
        AgentInfo(name="a0", groups=["db", "g"], nodes=[NodeInfo(type="custom/thing", version="2.0.0")]),
    ]
    check = node_checker(registry, agents)
    assert check("custom/thing", {"anything": 1}) == []
    assert check("custom/thing@2", {}) == []
    [wrong_major] = check("custom/thing@1", {})
    assert (wrong_major.on, wrong_major.message) == ("uses", "no agent provides custom/thing@1 (agents have @2)")
    [typo] = check("custom/thinh", {})
    assert typo.on == "uses"
    assert typo.message.startswith("unknown node type 'custom/thinh' (did you mean 'custom/thing'?")
    assert check.unknown == ["custom/thing@1", "custom/thinh"]
    if registry is not None and "exec/shell" in {e["type"] for e in registry.catalog()}:
        assert check("exec/shell", {"command": "echo"}) == []
        [missing] = check("exec/shell", {})
        assert missing.message == "missing required input 'command' of exec/shell"
    entries = {e.type: e for e in catalog(registry, agents)}
    thing = entries["custom/thing"]
    assert (thing.agents, thing.groups, thing.inputs_schema) == (["a0", "a1"], ["db", "g", "web"], None)


def test_unchecked_types_are_the_uses_the_server_has_not_installed() -> None:
    from waterflow_core.dsl import load_workflow
    from waterflow_server.api.nodes import load_local_registry

    workflow = load_workflow(
        "name: x\njobs:\n  a:\n    runs-on: g\n    steps:\n"
        "      - {uses: custom/thing, compensate: {uses: custom/undo@2}}\n"
        "      - {uses: exec/shell, with: {command: x}}\n"
        "      - {uses: custom/thing}\n"
    )
    registry = load_local_registry()
    assert unchecked_types(workflow, registry) == ["custom/thing", "custom/undo@2"]
    assert unchecked_types(workflow, None) == ["custom/thing", "custom/undo@2", "exec/shell"]
