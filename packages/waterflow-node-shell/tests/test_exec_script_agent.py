"""exec/script by path (and stdin) run by a real agent process through a real Temporal."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError, TimeoutType

from waterflow_testing import AgentProcess, StartAgent, eventually, pid_alive, unique_name
from waterflow_testing.harness import StepHarness, make_step

# Prints its argv as JSON, then what it read on stdin, and records both as outputs.
ARGV_PY = f"""#!{sys.executable}
import json, os, sys
data = sys.stdin.read()
print(json.dumps(sys.argv[1:]))
print(data, end="")
with open(os.environ["WATERFLOW_OUTPUT"], "a") as out:
    print(f"argc={{len(sys.argv) - 1}}", file=out)
"""

# Records the pids of itself, a background child and a grandchild that ignores SIGTERM, then waits.
SPAWNS_SH = """#!/bin/bash
sleep 1000 & echo $! >> "$1"
bash -c 'trap "" TERM; sleep 1000 & echo $! >> "$0"; wait' "$1" & echo $! >> "$1"
echo $$ >> "$1"
sleep 1000
"""

NASTY_ARGS = [
    "two words",
    'it\'s "quoted"',
    "$(touch {marker})",
    "`touch {marker}`",
    "--help",
    "-c",
    "; touch {marker}",
    "",
    "line\nbreak",
]


@pytest.fixture
def agent(start_agent: StartAgent, task_queue: str) -> AgentProcess:
    return start_agent(unique_name(), [task_queue])


def _script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def _cause(err: WorkflowFailureError) -> BaseException | None:
    activity_error = err.cause
    assert isinstance(activity_error, ActivityError), err
    return activity_error.cause


async def test_args_and_stdin_arrive_literally(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    argv_py = _script(tmp_path / "argv.py", ARGV_PY)
    nasty = [arg.format(marker=marker) for arg in NASTY_ARGS]
    stdin = f"'; touch {marker}; echo '\n$(touch {marker})\n"
    task = make_step(
        "exec/script",
        {
            "path": "$<< inputs.script >>",
            # Literal items and the same values as expression results: both are plain argv.
            "args": [*nasty, *(f"$<< inputs.args[{i}] >>" for i in range(len(nasty)))],
            "stdin": "$<< inputs.stdin >>",
        },
        contexts={"inputs": {"script": str(argv_py), "args": nasty, "stdin": stdin}},
    )
    result = await step_harness.run(task, task_queue)
    first_line, rest = result.outputs["stdout"].split("\n", 1)
    assert json.loads(first_line) == nasty + nasty
    assert rest == stdin
    assert result.outputs["argc"] == str(2 * len(nasty)) and result.outputs["exit-code"] == 0
    assert not marker.exists()


async def test_nonzero_exit_fails_the_step(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, tmp_path: Path
) -> None:
    failing = _script(tmp_path / "fail.sh", '#!/bin/sh\necho "bad thing" >&2\nexit 5\n')
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(make_step("exec/script", {"path": str(failing)}), task_queue)
    cause = _cause(info.value)
    assert isinstance(cause, ApplicationError) and cause.type == "WaterflowStepFailed"
    assert "command exited with code 5" in cause.message and "bad thing" in cause.message


async def test_missing_path_is_not_retried_and_names_the_path(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "deploy.sh"
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(make_step("exec/script", {"path": str(missing)}), task_queue, max_attempts=3)
    cause = _cause(info.value)
    assert isinstance(cause, ApplicationError)
    assert cause.type == "WaterflowBadInput" and cause.non_retryable
    assert str(missing) in cause.message and "does not exist" in cause.message
    assert "job/s1" in cause.message


async def test_both_script_and_path_is_a_bad_input(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str
) -> None:
    task = make_step("exec/script", {"path": "$<< inputs.p >>", "script": "echo hi"}, contexts={"inputs": {"p": "x"}})
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(task, task_queue)
    cause = _cause(info.value)
    assert isinstance(cause, ApplicationError) and cause.type == "WaterflowBadInput"
    assert "exactly one of script" in cause.message


async def _spawned_pids(pids: Path) -> list[int]:
    listed = await eventually(lambda: pids.read_text().split() if pids.exists() else [], lambda p: len(p) == 4)
    return [int(p) for p in listed]


async def test_timeout_kills_the_scripts_process_group(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, tmp_path: Path
) -> None:
    spawns = _script(tmp_path / "spawns.sh", SPAWNS_SH)
    pids = tmp_path / "pids"
    task = make_step("exec/script", {"path": str(spawns), "args": [str(pids)]})
    handle = await step_harness.start(task, task_queue, start_to_close=3, heartbeat_timeout=2)
    listed = await _spawned_pids(pids)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    cause = _cause(info.value)
    assert isinstance(cause, TimeoutError) and cause.type == TimeoutType.START_TO_CLOSE
    await eventually(lambda: [p for p in listed if pid_alive(p)], lambda alive: not alive)


async def test_cancellation_kills_the_scripts_process_group(
    step_harness: StepHarness, agent: AgentProcess, task_queue: str, tmp_path: Path
) -> None:
    spawns = _script(tmp_path / "spawns.sh", SPAWNS_SH)
    pids = tmp_path / "pids"
    task = make_step("exec/script", {"path": str(spawns), "args": [str(pids)]})
    handle = await step_harness.start(task, task_queue, heartbeat_timeout=2)
    listed = await _spawned_pids(pids)
    assert all(pid_alive(p) for p in listed)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    # Includes the grandchild that ignores SIGTERM: it gets SIGKILL.
    await eventually(lambda: [p for p in listed if pid_alive(p)], lambda alive: not alive)
