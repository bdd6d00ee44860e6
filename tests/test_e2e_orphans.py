"""A step's processes die with its agent: ``kill -9`` of the agent mid-step kills the step's shell,
its background child, a ``setsid``'d grandchild and a daemonized (double-forked) one, and the
retry on the restarted agent finds none of them alive. When the sentinel that does this is killed
too, the restarted agent kills them before it takes work. A step that *finished* keeps what it
started in the background. Processes are identified by pid and start time, never by name patterns.

Steps reach the agents through Temporal as the interpreter sends them (``step_harness``).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from waterflow_testing import AgentProcess, eventually, pid_alive, unique_name
from waterflow_testing.devserver import DevServer
from waterflow_testing.harness import StepHarness, make_step

SPAWN = """
d="$MARKS"
echo attempt >> "$d/attempts"
if [ "$(wc -l < "$d/attempts")" -ge 2 ]; then
  # The retry: which processes of the first attempt are still alive (same pid, same start)?
  while read -r pid start; do
    if [ "$(cut -d' ' -f22 "/proc/$pid/stat" 2>/dev/null)" = "$start" ]; then
      echo "$pid" >> "$d/alive-at-retry"
    fi
  done < "$d/procs"
  exit 0
fi
sleep 1000 & echo $! > "$d/child"
bash -c 'setsid sleep 1000 & echo $! > "$0/grandchild"; wait' "$d" &
( setsid sleep 1000 & echo $! > "$d/daemon" )
echo $$ > "$d/shell"
until [ -s "$d/grandchild" ] && [ -s "$d/daemon" ]; do sleep 0.05; done
for f in shell child grandchild daemon; do
  pid=$(cat "$d/$f"); echo "$pid $(cut -d' ' -f22 "/proc/$pid/stat")" >> "$d/procs"
done
touch "$d/ready"
wait
"""

DAEMON = 'setsid sleep 1000 > /dev/null 2>&1 < /dev/null & echo $! > "$MARKS/kept"'


def start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (ticks since boot), ``None`` when there is no such process."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def alive(procs: dict[int, int]) -> list[int]:
    """Which of ``{pid: start time}`` still run as the same process."""
    return [pid for pid, start in procs.items() if start_time(pid) == start and pid_alive(pid)]


def sentinel_of(agent: AgentProcess) -> dict[int, int]:
    """``{pid: start time}`` of the agent's process sentinel: its child running ``procs.py sentinel``."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = Path(entry, "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue  # not a process, or gone meanwhile
        start = start_time(int(entry.name))
        if parent == agent.pid and b"sentinel" in argv and start is not None:
            found[int(entry.name)] = start
    assert len(found) == 1, f"agent {agent.pid} has sentinels {found}"
    return found


@pytest.fixture
def leftovers() -> Iterator[dict[int, int]]:
    """Processes the test must not leave behind, whatever happens: ``{pid: start time}``."""
    procs: dict[int, int] = {}
    yield procs
    for pid in alive(procs):
        os.kill(pid, signal.SIGKILL)


class Agents:
    """Agents of one name and workdir (its state, the ledger of running steps, lives there)."""

    def __init__(self, temporal_dev: DevServer, workdir: Path) -> None:
        self.temporal_dev = temporal_dev
        self.workdir = workdir
        self.name = unique_name("agent")
        self.group = unique_name("group")
        self.started: list[AgentProcess] = []
        self.log_start = 0

    async def start(self) -> AgentProcess:
        """Start the next life of the agent and wait until it polls."""
        agent = AgentProcess(
            self.name,
            [self.group],
            address=self.temporal_dev.address,
            namespace=self.temporal_dev.namespace,
            workdir=self.workdir,
        )
        # Every life appends to the same log file: wait for this one's ready line.
        self.log_start = len(agent.output)
        agent.start()
        self.started.append(agent)
        await asyncio.to_thread(agent.wait_for_output, r"\bready\b", start=self.log_start)
        return agent

    def output(self, agent: AgentProcess) -> str:
        """What the latest life of the agent printed."""
        return agent.output[self.log_start :]

    def stop(self) -> None:
        for agent in self.started:
            agent.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def agents(temporal_dev: DevServer, tmp_path: Path) -> AsyncIterator[Agents]:
    pool = Agents(temporal_dev, tmp_path / "agent")
    yield pool
    await asyncio.to_thread(pool.stop)  # not blocking the loop: the harness's worker runs on it


async def _kill_mid_step(
    step_harness: StepHarness, agents: Agents, marks: Path, leftovers: dict[int, int], *, sentinel_too: bool
) -> asyncio.Task[object]:
    """Start the step, record its processes once they run, SIGKILL the agent (and its sentinel)."""
    first = await agents.start()
    task = make_step("exec/shell", {"command": SPAWN, "env": {"MARKS": str(marks)}})
    handle = await step_harness.start(task, agents.group, heartbeat_timeout=3, max_attempts=2)
    result = asyncio.ensure_future(handle.result())
    await eventually(lambda: result.done() or (marks / "ready").exists())
    assert not result.done(), result.result()
    for line in (marks / "procs").read_text().splitlines():
        pid, start = map(int, line.split())
        leftovers[pid] = start
    assert len(leftovers) == 4 and len(alive(leftovers)) == 4
    if sentinel_too:
        (sentinel,) = sentinel_of(first)
        os.kill(sentinel, signal.SIGKILL)
    first.kill()
    await asyncio.to_thread(first.wait)
    return result


async def test_kill_9_of_the_agent_kills_the_steps_processes(
    step_harness: StepHarness, agents: Agents, tmp_path: Path, leftovers: dict[int, int]
) -> None:
    result = await _kill_mid_step(step_harness, agents, tmp_path, leftovers, sentinel_too=False)
    # The shell, its child, the setsid'd grandchild and the daemon: all gone with the agent.
    await eventually(lambda: alive(leftovers), lambda still: not still, timeout=30)
    await agents.start()
    await asyncio.wait_for(result, 120)
    assert (tmp_path / "attempts").read_text().splitlines() == ["attempt", "attempt"]
    assert not (tmp_path / "alive-at-retry").exists(), (tmp_path / "alive-at-retry").read_text()


async def test_a_restarted_agent_kills_what_its_previous_life_left(
    step_harness: StepHarness, agents: Agents, tmp_path: Path, leftovers: dict[int, int]
) -> None:
    result = await _kill_mid_step(step_harness, agents, tmp_path, leftovers, sentinel_too=True)
    # Nobody watched over them: they outlive the agent ...
    assert len(alive(leftovers)) == 4
    second = await agents.start()
    # ... until it restarts, and it kills them before it polls for work.
    assert not alive(leftovers)
    # The four recorded plus the `bash -c` between the shell and the setsid'd grandchild.
    assert "killed 5 process(es) left running by 1 step(s)" in agents.output(second)
    await asyncio.wait_for(result, 120)
    assert (tmp_path / "attempts").read_text().splitlines() == ["attempt", "attempt"]
    assert not (tmp_path / "alive-at-retry").exists(), (tmp_path / "alive-at-retry").read_text()


async def test_a_finished_step_keeps_its_daemon_after_kill_9(
    step_harness: StepHarness, agents: Agents, tmp_path: Path, leftovers: dict[int, int]
) -> None:
    agent = await agents.start()
    task = make_step("exec/shell", {"command": DAEMON, "env": {"MARKS": str(tmp_path)}})
    await step_harness.run(task, agents.group)
    pid = int((tmp_path / "kept").read_text())
    start = start_time(pid)
    assert start is not None
    leftovers[pid] = start
    sentinel = sentinel_of(agent)
    agent.kill()
    await asyncio.to_thread(agent.wait)
    # The sentinel exits once it has killed what the ledger lists: nothing, the step had ended.
    await eventually(lambda: alive(sentinel), lambda still: not still, timeout=30)
    assert alive(leftovers) == [pid]
