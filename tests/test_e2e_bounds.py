"""A step that writes 150 MB of output: the agent's memory stays bounded, its log volume follows the
step log rate limit, the result keeps at most ``output-cap`` bytes, and an ``output-cap`` above its
bound is refused before anything runs.

Memory is measured from ``/proc/<agent pid>/status`` (``VmHWM``, the peak resident set) with a
generous bound: a memory bound, not a timing assertion. The log volume bound is derived from the
agent's configured rate and burst and the step's measured duration.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from waterflow_testing import AgentProcess, StartAgent, unique_name
from waterflow_testing.harness import StepHarness, make_step

OUTPUT_BYTES = 150 * 1024 * 1024
CAP = 256 * 1024
RATE = 64 * 1024
BURST = 1024 * 1024
# 150 MiB of 1000-character lines, half on stdout, half on stderr.
COMMAND = f"""
line=$(head -c 999 /dev/zero | tr '\\0' x)
head -c {OUTPUT_BYTES // 2} < <(yes "$line")
head -c {OUTPUT_BYTES // 2} < <(yes "$line") >&2
"""
# Growth of the agent's peak resident set allowed while it runs the step: the output passes
# through in 64 KiB reads; what the agent keeps is the two capped tails (at most twice the cap
# each), the step's log budget and the log handler's queue (at most 8 MiB).
MAX_GROWTH = 100 * 1024 * 1024


def memory(pid: int, field: str) -> int:
    """``VmRSS``/``VmHWM`` of ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.fixture
def agent(start_agent: StartAgent) -> AgentProcess:
    return start_agent(
        unique_name("agent"),
        [unique_name("group")],
        args=["--step-log-rate", "64KiB", "--step-log-burst", "1MiB"],
    )


async def test_150_mb_of_output_keeps_the_agent_bounded(step_harness: StepHarness, agent: AgentProcess) -> None:
    group = agent.groups[0]
    # Warm up first: the agent's first step imports and allocates what every step then reuses.
    await step_harness.run(make_step("exec/shell", {"command": "echo warm"}), group)
    before = memory(agent.pid, "VmRSS")
    jsonl = agent.workdir / "work" / "logs" / "steps.jsonl"
    jsonl_before, log_before = jsonl.stat().st_size, len(agent.output.encode())

    started = time.monotonic()
    task = make_step("exec/shell", {"command": COMMAND, "output-cap": CAP}, step="flood")
    result = await step_harness.run(task, group, start_to_close=600, timeout=600)
    elapsed = time.monotonic() - started

    peak = memory(agent.pid, "VmHWM")
    assert peak - before < MAX_GROWTH, f"agent grew from {before >> 20} MiB to a peak of {peak >> 20} MiB"
    outputs = result.outputs
    assert outputs["exit-code"] == 0 and outputs["truncated"] is True
    assert len(outputs["stdout"].encode()) == CAP and len(outputs["stderr"].encode()) == CAP

    # What the budget admits, plus a record's fields around each admitted line and the warnings
    # that count the dropped ones.
    admitted = BURST + RATE * elapsed
    shipped = jsonl.stat().st_size - jsonl_before
    logged = len(agent.output.encode()) - log_before
    assert shipped < 2 * admitted + 64 * 1024, f"{shipped} bytes of JSON lines in {elapsed:.0f}s"
    assert logged < 2 * admitted + 64 * 1024, f"{logged} bytes of agent log in {elapsed:.0f}s"
    assert shipped < OUTPUT_BYTES / 10  # the point: far less than what the step wrote
    records = [json.loads(line) for line in jsonl.read_text().splitlines() if '"flood"' in line]
    dropped = [r["message"] for r in records if "dropped: the step logged faster" in r["message"]]
    assert dropped and sum(int(m.split()[1]) for m in dropped) > 100_000
    assert any("dropped" in line for line in result.log_tail)


async def test_an_output_cap_above_the_bound_is_a_bad_input(step_harness: StepHarness, agent: AgentProcess) -> None:
    task = make_step("exec/shell", {"command": "echo hi", "output-cap": 150_000_000})
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(task, agent.groups[0])
    activity_error = info.value.cause
    assert isinstance(activity_error, ActivityError)
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError) and cause.type == "WaterflowBadInput" and cause.non_retryable
    assert "with.output-cap" in cause.message and "262144" in cause.message
