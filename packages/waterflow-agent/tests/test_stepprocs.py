"""The agent's side of step process lifetime: marks, the ledger, the workdir lock, cancel sweeps.

The agent-death half (the sentinel, the restart sweep) runs against real agents killed with
SIGKILL in ``tests/test_e2e_orphans.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError

from waterflow_agent.stepprocs import StepProcesses, WorkdirInUse
from waterflow_core.procs import TOKEN_ENV, new_token
from waterflow_testing import AgentProcess, StartAgent, eventually, pid_alive, unique_name
from waterflow_testing.harness import StepHarness, make_step


@pytest.fixture
def agent(start_agent: StartAgent, nodes_dir: Path, group: str) -> AgentProcess:
    return start_agent(unique_name(), [group], pythonpath=[nodes_dir])


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """Pids a test learns of; those still running are killed at the end."""
    found: list[int] = []
    yield found
    for pid in found:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _environ(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")


async def test_a_cancelled_steps_detached_process_is_killed_by_the_agent(
    step_harness: StepHarness, agent: AgentProcess, group: str, tmp_path: Path, pids: list[int]
) -> None:
    # The node starts a process in its own session and never stops it: the agent does.
    pidfile = tmp_path / "pid"
    handle = await step_harness.start(make_step("test/detach", {"pidfile": str(pidfile)}), group, heartbeat_timeout=2)
    pid = int(await eventually(lambda: pidfile.exists() and pidfile.read_text()))
    pids.append(pid)
    marks = [entry for entry in _environ(pid) if entry.startswith(TOKEN_ENV + "=")]
    assert len(marks) == 1
    ledger = Path(agent.workdir / "work" / "state" / "running")
    assert [p.name for p in ledger.iterdir()] == [marks[0].partition("=")[2]]

    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    await eventually(lambda: pid_alive(pid), lambda still: not still)
    await eventually(lambda: list(ledger.iterdir()), lambda tokens: not tokens)


async def test_a_finished_step_keeps_what_it_started(
    step_harness: StepHarness, agent: AgentProcess, group: str, tmp_path: Path, pids: list[int]
) -> None:
    pidfile = tmp_path / "pid"
    await step_harness.run(make_step("test/detach", {"pidfile": str(pidfile), "wait": False}), group)
    pid = int(pidfile.read_text())
    pids.append(pid)
    assert pid_alive(pid)
    assert list((agent.workdir / "work" / "state" / "running").iterdir()) == []


@pytest.mark.unit
def test_one_agent_per_workdir(tmp_path: Path) -> None:
    first, second = StepProcesses(tmp_path), StepProcesses(tmp_path)
    first.open()
    try:
        with pytest.raises(WorkdirInUse, match=rf"another agent \(pid {os.getpid()}\) runs with the workdir"):
            second.open()
    finally:
        first.close()
    second.open()
    second.close()
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


@pytest.mark.unit
def test_open_kills_the_previous_lifes_leftovers(tmp_path: Path) -> None:
    previous = StepProcesses(tmp_path)
    token = new_token()
    previous.ledger.add(token)  # as a step of an agent that then died
    leftover = subprocess.Popen(["sleep", "1000"], env={**os.environ, TOKEN_ENV: token})
    spared = subprocess.Popen(["sleep", "1000"], env={**os.environ, TOKEN_ENV: new_token()})
    processes = StepProcesses(tmp_path)
    try:
        assert processes.open() == 1
        assert leftover.wait(10) == -signal.SIGKILL
        assert spared.poll() is None
        assert processes.ledger.tokens() == []
    finally:
        processes.close()
        for proc in (leftover, spared):
            proc.kill()
            proc.wait()


@pytest.mark.unit
def test_a_killed_sentinel_is_replaced_when_the_next_step_starts(tmp_path: Path) -> None:
    processes = StepProcesses(tmp_path)
    processes.open()
    try:
        first = processes.sentinel_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30  # a liveness bound
        while processes.sentinel_pid is not None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        processes.begin(new_token())
        second = processes.sentinel_pid
        assert second is not None and second != first and pid_alive(second)
    finally:
        processes.close()
    assert processes.sentinel_pid is None and not pid_alive(second)
