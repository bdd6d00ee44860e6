"""http/request run by a real agent process through a real Temporal."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from waterflow_testing import AgentProcess, StartAgent, eventually, unique_name
from waterflow_testing.harness import StepHarness, make_step

if TYPE_CHECKING:  # the fixture's class; conftest is not importable under --import-mode=importlib
    from conftest import LocalServer

TOKEN = "t0ken-Secr3t-value"


@pytest.fixture
def agent(start_agent: StartAgent, task_queue: str) -> AgentProcess:
    """An agent serving ``task_queue`` as its group, with the built-in network policy and a secret."""
    return start_agent(
        unique_name(),
        [task_queue],
        env={"WATERFLOW_SECRET_API_TOKEN": TOKEN, "WATERFLOW_HTTP_ALLOW": "", "WATERFLOW_HTTP_DENY": ""},
    )


def _cause(err: WorkflowFailureError) -> tuple[ActivityError, ApplicationError]:
    activity_error = err.cause
    assert isinstance(activity_error, ActivityError), err
    assert isinstance(activity_error.cause, ApplicationError), activity_error
    return activity_error, activity_error.cause


async def test_success_with_secret_bearer_token(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, server: LocalServer
) -> None:
    task = make_step(
        "http/request",
        {"url": f"{server.url}/echo", "auth": {"type": "bearer", "token": "$<< secrets.API_TOKEN >>"}},
    )
    result = await step_harness.run(task, task_queue)
    out = result.outputs
    assert out["status"] == 200 and out["json"]["path"] == "/echo"
    assert {"status", "headers", "body", "json", "elapsed-ms", "url", "truncated"} <= set(out)
    # The token reached the server; the outputs (which echo it) are masked by the agent.
    assert server.seen.requests[0]["headers"]["authorization"] == f"Bearer {TOKEN}"  # type: ignore[index]
    assert TOKEN not in str(out) and out["json"]["headers"]["authorization"] == "Bearer ***"


async def test_retry_waits_for_a_flaky_endpoint(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, server: LocalServer
) -> None:
    task = make_step("http/request", {"url": f"{server.url}/flaky/agent/2", "expect-status": [200]})
    result = await step_harness.run(task, task_queue, max_attempts=5)
    assert result.attempt == 3 and result.outputs["body"] == "healthy"


async def test_unexpected_status_fails_after_its_attempts(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, server: LocalServer
) -> None:
    task = make_step("http/request", {"url": f"{server.url}/status/500"}, step="health")
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(task, task_queue, max_attempts=2)
    activity_error, cause = _cause(info.value)
    assert cause.type == "WaterflowStepFailed" and not cause.non_retryable
    assert activity_error.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert "job/health" in cause.message and "returned 500, expected 2xx" in cause.message
    assert server.seen.paths() == ["/status/500", "/status/500"]


async def test_policy_refusal_is_not_retried(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, server: LocalServer
) -> None:
    target = "http://169.254.169.254/latest/meta-data/"
    task = make_step("http/request", {"url": f"{server.url}/redirect?to={target}"})
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(task, task_queue, max_attempts=5)
    activity_error, cause = _cause(info.value)
    assert cause.type == "WaterflowHttpRefused" and cause.non_retryable
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert "169.254.169.254" in cause.message
    assert server.seen.paths() == ["/redirect"]


async def test_cancellation_aborts_the_request(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, server: LocalServer
) -> None:
    task = make_step("http/request", {"url": f"{server.url}/slow", "timeout": "5m"})
    handle = await step_harness.start(task, task_queue, heartbeat_timeout=2)
    await eventually(lambda: "slow started" in server.seen.events)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    await eventually(lambda: "slow disconnected" in server.seen.events)
