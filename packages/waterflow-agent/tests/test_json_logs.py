"""The agent's own log as JSON (``--log-format json``): one object per line, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError

from waterflow_testing import StartAgent, unique_name
from waterflow_testing.harness import StepHarness, make_step

SECRET = "js0n-s3cr3t-Valu3"


async def test_step_records_in_json_are_masked(
    start_agent: StartAgent, nodes_dir: Path, group: str, step_harness: StepHarness
) -> None:
    agent = start_agent(
        unique_name(),
        [group],
        pythonpath=[nodes_dir],
        env={"WATERFLOW_SECRET_API_TOKEN": SECRET, "WATERFLOW_LOG_FORMAT": "json"},
    )
    await step_harness.run(make_step("test/echo", {"message": "token=$<< secrets.API_TOKEN >>"}), group)
    failing = make_step("test/fail", {"reason": "bad $<< secrets.API_TOKEN >>"}, step="boom")
    with pytest.raises(WorkflowFailureError):
        await step_harness.run(failing, group, max_attempts=1)

    records = [json.loads(line) for line in agent.output.splitlines() if line.startswith("{")]
    assert all({"ts", "level", "logger", "message"} <= set(record) for record in records)
    assert any("token=***" in record["message"] for record in records), agent.output
    assert SECRET not in agent.output
    # Every line but the ready line (stdout) is a record.
    others = [line for line in agent.output.splitlines() if line and not line.startswith("{")]
    assert all(" ready: polling " in line for line in others), others
