"""Steps executed by a real agent process through a real Temporal."""

from __future__ import annotations

import importlib.metadata
import os
import re
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from waterflow_core.agent_registry import list_agents, personal_queue
from waterflow_core.steptask import StepResult
from waterflow_testing import AgentProcess, StartAgent, eventually, unique_name
from waterflow_testing.harness import StepHarness, make_step

SECRET = "s3cr3t-Valu3"


def _application_error(err: WorkflowFailureError) -> tuple[ActivityError, ApplicationError]:
    activity_error = err.cause
    assert isinstance(activity_error, ActivityError), err
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError), activity_error
    return activity_error, cause


@pytest.fixture
def agent(start_agent: StartAgent, nodes_dir: Path, group: str) -> AgentProcess:
    """One agent serving ``group`` and a second group, with the test nodes and a secret."""
    return start_agent(
        unique_name(),
        [group, f"{group}-other"],
        pythonpath=[nodes_dir],
        env={"WATERFLOW_SECRET_API_TOKEN": SECRET, "WATERFLOW_SECRET_PIN": "42"},
    )


async def test_step_runs_on_a_group_queue(step_harness: StepHarness, agent: AgentProcess, group: str) -> None:
    task = make_step(
        "test/echo",
        {"message": "hello $<< inputs.who >>", "count": "$<< inputs.n >>"},
        env={"GREETING": "hi $<< inputs.who >>"},
        contexts={"inputs": {"who": "world", "n": 3}},
    )
    result = await step_harness.run(task, f"{group}-other")
    assert isinstance(result, StepResult)
    assert result.agent == agent.name
    out = result.outputs
    assert (out["message"], out["count"], out["version"]) == ("hello world", 3, "1.0.0")
    assert out["env"]["GREETING"] == "hi world"
    assert out["agent"] == agent.name
    assert Path(out["workdir"]).is_absolute()
    assert "echo: hello world" in result.log_tail


async def test_node_major_version_in_activity_type(
    step_harness: StepHarness, agent: AgentProcess, group: str
) -> None:
    result = await step_harness.run(make_step("test/echo@1", {"message": "m"}), group)
    assert result.outputs["version"] == "1.0.0"


async def test_personal_queue_reaches_exactly_that_agent(
    step_harness: StepHarness, start_agent: StartAgent, nodes_dir: Path, group: str
) -> None:
    first = start_agent(unique_name(), [group], pythonpath=[nodes_dir], ready=False)
    second = start_agent(unique_name(), [group], pythonpath=[nodes_dir], ready=False)
    first.wait_ready()
    second.wait_ready()
    for target in (first, second, first):
        result = await step_harness.run(
            make_step("test/echo", {"message": "x"}), personal_queue(target.name)
        )
        assert result.agent == target.name


async def test_server_context_and_shell_inputs(
    step_harness: StepHarness, agent: AgentProcess, group: str
) -> None:
    task = make_step(
        "test/shellish",
        {"command": "echo $<< inputs.text >> on $<< server.name >>"},
        contexts={"inputs": {"text": "$(touch /tmp/pwned); rm -rf /"}},
    )
    out = (await step_harness.run(task, group)).outputs
    # The values travel as environment variables; the command text only references them.
    assert "pwned" not in out["command"] and agent.name not in out["command"]
    variables = re.findall(r"\$\{(\w+)\}", out["command"])
    assert [out["env"][v] for v in variables] == ["$(touch /tmp/pwned); rm -rf /", agent.name]


async def test_unknown_node_fails_without_retry(
    step_harness: StepHarness, agent: AgentProcess, group: str
) -> None:
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(make_step("test/nope", step="missing"), group, max_attempts=5)
    activity_error, cause = _application_error(info.value)
    assert cause.type == "WaterflowUnknownNode"
    assert cause.non_retryable
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert "job/missing" in cause.message and "test/nope" in cause.message


async def test_bad_input_names_step_and_field(
    step_harness: StepHarness, agent: AgentProcess, group: str
) -> None:
    task = make_step("test/echo", {"message": "m", "count": "$<< secrets.API_TOKEN >>"})
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(task, group, max_attempts=5)
    activity_error, cause = _application_error(info.value)
    assert cause.type == "WaterflowBadInput" and cause.non_retryable
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert "job/s1" in cause.message and "with.count" in cause.message
    assert SECRET not in cause.message


async def test_expressions_in_literal_inputs_are_refused(
    step_harness: StepHarness, agent: AgentProcess, group: str
) -> None:
    # An input value must never add interpreter arguments (`python3 -c ...`).
    task = make_step(
        "exec/script",
        {"script": "print(1)", "interpreter": "python3 $<< inputs.flags >>"},
        contexts={"inputs": {"flags": "-c 'import os; os.system(\"touch /tmp/x\")'"}},
    )
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(task, group, max_attempts=3)
    _, cause = _application_error(info.value)
    assert cause.type == "WaterflowBadInput" and cause.non_retryable
    assert "with.interpreter" in cause.message and "literal" in cause.message


async def test_secrets_are_masked_everywhere(
    step_harness: StepHarness, agent: AgentProcess, group: str
) -> None:
    task = make_step(
        "test/echo", {"message": "token=$<< secrets.API_TOKEN >>$<< secrets.NOPE >> pin=$<< secrets.PIN >>"}
    )
    result = await step_harness.run(task, group)
    assert result.outputs["message"] == "token=*** pin=42"
    assert "echo: token=*** pin=42" in result.log_tail
    assert f"WARNING: secret NOPE is not defined on agent {agent.name}" in result.log_tail
    # Too short to mask without wrecking every log; the step log says so.
    assert "WARNING: secret PIN is shorter than 4 characters: it is not masked" in result.log_tail
    assert SECRET not in str(result.model_dump())

    failing = make_step("test/fail", {"reason": "bad $<< secrets.api_token >>"}, step="boom")
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(failing, group, max_attempts=2)
    activity_error, cause = _application_error(info.value)
    assert cause.type == "WaterflowStepFailed" and not cause.non_retryable
    assert activity_error.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert cause.message == "job/boom: RuntimeError: failed: bad ***"
    details = cause.details[0]
    assert (details["agent"], details["attempt"]) == (agent.name, 2)
    assert any("about to fail because bad ***" in line for line in details["log_tail"])

    # Neither the agent's own log nor the shipped step log ever saw the value.
    shipped = agent.workdir / "work" / "logs" / "steps.jsonl"
    await eventually(shipped.exists)
    assert "token=***" in shipped.read_text()
    assert SECRET not in shipped.read_text()
    assert "token=***" in agent.output
    assert SECRET not in agent.output


async def test_each_attempt_error_reaches_the_workflow(
    step_harness: StepHarness, agent: AgentProcess, group: str
) -> None:
    task = make_step("test/flaky", {"succeed_on": 3}, step="flaky")
    result = await step_harness.run(task, group, max_attempts=3)
    assert result.attempt == 3
    assert result.attempt_errors == [
        f"RuntimeError: attempt 1 failed on {agent.name}",
        f"RuntimeError: attempt 2 failed on {agent.name}",
    ]

    failing = make_step("test/fail", {"reason": "no"}, step="fails")
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(failing, group, max_attempts=3)
    _, cause = _application_error(info.value)
    # The last attempt's error is the failure itself; the list holds the ones before it.
    assert cause.details[0]["attempt_errors"] == ["RuntimeError: failed: no"] * 2


async def test_attempt_errors_follow_a_retry_to_another_agent(
    step_harness: StepHarness, start_agent: StartAgent, nodes_dir: Path, group: str
) -> None:
    failing = start_agent(unique_name("failing"), [group], pythonpath=[nodes_dir])
    task = make_step("test/flaky", {"fail_on": failing.name}, step="moves")
    handle = await step_harness.start(task, group, max_attempts=20)
    # The first attempt can only land on the failing agent; the next ones may go elsewhere.
    await eventually(lambda: f"attempt 1 failed on {failing.name}" in failing.output)
    other = start_agent(unique_name("other"), [group], pythonpath=[nodes_dir])
    result = await handle.result()
    assert result.agent == other.name
    assert len(result.attempt_errors) == result.attempt - 1 >= 1
    assert all(f"failed on {failing.name}" in error for error in result.attempt_errors)


async def test_cancellation_reaches_the_node(
    step_harness: StepHarness, agent: AgentProcess, group: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    task = make_step("test/sleep", {"seconds": 300, "marker": str(marker)})
    handle = await step_harness.start(task, group, heartbeat_timeout=2)
    await eventually(marker.exists)
    pid = int(marker.read_text().split()[1])

    await handle.cancel()
    await eventually(marker.read_text, lambda text: text.startswith("cancelled"))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(WorkflowFailureError):
        await handle.result()


@pytest.mark.skipif(
    "shell" not in {ep.name for ep in importlib.metadata.entry_points(group="waterflow.nodes")},
    reason="waterflow-node-shell is not installed",
)
async def test_cancelling_exec_shell_kills_its_process_group(
    step_harness: StepHarness, agent: AgentProcess, group: str, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    command = f'sleep 300 & echo $! > "{pids}"; echo started; wait'
    task = make_step("exec/shell", {"command": command})
    handle = await step_harness.start(task, group, heartbeat_timeout=2)
    await eventually(lambda: pids.exists() and pids.read_text().strip())
    pid = int(pids.read_text())
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    await eventually(gone)


async def test_agent_is_in_the_registry_until_it_stops(
    temporal_client: Client, agent: AgentProcess, group: str
) -> None:
    agents = await eventually(
        lambda: list_agents(temporal_client), lambda a: agent.name in {x.name for x in a}
    )
    info = next(a for a in agents if a.name == agent.name)
    assert info.groups == [group, f"{group}-other"]
    assert {"test/echo", "test/sleep"} <= {n.type for n in info.nodes}
    echo = next(n for n in info.nodes if n.type == "test/echo")
    assert (echo.version, echo.distribution, echo.distribution_version) == ("1.0.0", "wf-test-nodes", "1.0.0")
    assert {"hostname", "os", "python", "cpu_count"} <= set(info.facts)

    agent.terminate()
    assert agent.wait(60) == 0
    await eventually(
        lambda: list_agents(temporal_client, include_stale=True),
        lambda a: agent.name not in {x.name for x in a},
    )


async def test_huge_log_lines_and_errors_do_not_wedge_the_step(
    step_harness: StepHarness, agent: AgentProcess, group: str
) -> None:
    # The node logs a 1.5 MB line then fails with it: the log tail (heartbeat details and the
    # failure's details) and the message must stay small, or the failure cannot be reported
    # (Temporal refuses payloads over 2 MB) and the step hangs until its timeout.
    failing = make_step("test/fail", {"reason": "x" * 1_500_000}, step="huge")
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(failing, group, max_attempts=1, start_to_close=30, timeout=45)
    _, cause = _application_error(info.value)
    assert cause.type == "WaterflowStepFailed"
    assert cause.message.startswith("job/huge: RuntimeError: failed: xxx")
    assert len(cause.message) < 100_000
    assert sum(len(line) for line in cause.details[0]["log_tail"]) < 100_000


async def test_oversized_outputs_fail_clearly_instead_of_hanging(
    step_harness: StepHarness, agent: AgentProcess, group: str
) -> None:
    # 1.5 MB of outputs: below Temporal's 2 MB payload cap but above the step-result limit, so
    # the agent must refuse it itself, at once and without retries.
    task = make_step("test/echo", {"message": "y" * 1_500_000, "count": "1"}, step="big")
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(task, group, max_attempts=3, start_to_close=30, timeout=45)
    activity_error, cause = _application_error(info.value)
    assert cause.type == "WaterflowStepFailed" and cause.non_retryable
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert cause.message.startswith("job/big: outputs are ") and "limit of a step result" in cause.message
