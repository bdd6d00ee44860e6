"""file/transfer run by a real agent process through a real Temporal."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from waterflow_node_file import ROOTS_ENV
from waterflow_testing import AgentProcess, StartAgent, eventually, unique_name
from waterflow_testing.harness import StepHarness, make_step

PAYLOAD = b"through the agent\n" * 4096


@pytest.fixture
def group() -> str:
    return unique_name("group")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """The agent's only allowed root."""
    path = tmp_path / "files"
    path.mkdir()
    return path


@pytest.fixture
def agent(start_agent: StartAgent, group: str, files: Path) -> AgentProcess:
    return start_agent(unique_name(), [group], env={ROOTS_ENV: str(files), "WATERFLOW_LOAD_PLUGINS": "file"})


async def test_download_through_the_agent(
    step_harness: StepHarness, agent: AgentProcess, group: str, files: Path, http_server: Any
) -> None:
    http_server.files["a"] = PAYLOAD
    task = make_step(
        "file/transfer",
        {"source": "$<< inputs.url >>", "destination": str(files / "a"), "mode": "0600", "max-bytes": "1000000"},
        contexts={"inputs": {"url": http_server.url("/files/a")}},
    )
    result = await step_harness.run(task, group)
    assert result.outputs == {
        "path": str(files / "a"),
        "bytes": len(PAYLOAD),
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
        "changed": True,
    }
    assert (files / "a").read_bytes() == PAYLOAD and (files / "a").stat().st_mode & 0o777 == 0o600


async def test_checksum_mismatch_is_not_retried(
    step_harness: StepHarness, agent: AgentProcess, group: str, files: Path, http_server: Any
) -> None:
    http_server.files["a"] = PAYLOAD
    task = make_step(
        "file/transfer",
        {"source": http_server.url("/files/a"), "destination": str(files / "a"), "checksum": "sha256:" + "1" * 64},
    )
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(task, group, max_attempts=3)
    activity_error = info.value.cause
    assert isinstance(activity_error, ActivityError)
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "WaterflowStepFailed" and cause.non_retryable and "checksum mismatch" in cause.message
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert http_server.hits["/files/a"] == 1
    assert list(files.iterdir()) == []


async def test_cancelling_a_download_removes_the_partial_file(
    step_harness: StepHarness, agent: AgentProcess, group: str, files: Path, http_server: Any
) -> None:
    task = make_step("file/transfer", {"source": http_server.url("/slow/x"), "destination": str(files / "big")})
    handle = await step_harness.start(task, group, heartbeat_timeout=2)
    await eventually(lambda: [p for p in files.iterdir() if p.name.endswith(".waterflow-tmp") and p.stat().st_size])
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    await eventually(lambda: list(files.iterdir()), lambda left: left == [])
