"""A 15 s flow/sleep survives `kill -9` of the whole dev stack and a restart on the same data.

`waterflow dev` (embedded Temporal with its SQLite file, the API server with the interpreter
worker, the local agent) runs a workflow: a step, a 15 s flow/sleep, a step. While the sleep is
pending every process of the stack gets SIGKILL (no process is told anything first); `waterflow
dev` then starts again on the same data directory and ports. The run finishes: the step before
the sleep ran once, the step after ran once and at least 15 s after the first, and the run's
history holds exactly one timer for the sleep, started before the crash and fired after it: the
wait was Temporal's durable timer, not a sleep in some process, and it was not started over.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client as TemporalClient

from waterflow_sdk import Client
from waterflow_testing import pid_alive
from waterflow_testing.devserver import free_port

READY_TIMEOUT = 120.0
SLEEP_SECONDS = 15

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


class Dev:
    """`waterflow dev` as a child process on fixed ports, its output appended to a file."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir, self.log = data_dir, log
        self.port, self.temporal_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable, "-m", "waterflow_sdk", "dev", "--data-dir", str(self.data_dir), "--headless",
            "--port", str(self.port), "--temporal-port", str(self.temporal_port),
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("WATERFLOW_TEMPORAL_ADDRESS", None)
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while not re.search(r"^ready\b", self.log.read_bytes()[offset:].decode(errors="replace"), re.M):
            assert self.process.poll() is None, f"waterflow dev exited:\n{self.log.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"waterflow dev not ready:\n{self.log.read_text(errors='replace')}"
            time.sleep(0.1)

    def kill_everything(self) -> set[int]:
        """SIGKILL `waterflow dev` and every process below it, all at once; their pids."""
        assert self.process is not None
        pids = {self.process.pid, *descendants(self.process.pid)}
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        deadline = time.monotonic() + 30
        while any(pid_alive(pid) for pid in pids):
            assert time.monotonic() < deadline, "processes survived SIGKILL"
            time.sleep(0.05)
        return pids

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                for pid in {self.process.pid, *descendants(self.process.pid)}:
                    os.kill(pid, signal.SIGKILL)
                self.process.wait()


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


async def sleep_timer_events(address: str, run_id: str) -> list[tuple[EventType.ValueType, str]]:
    """The run's timer events: ``(type, summary or fired timer id)``."""
    client = await TemporalClient.connect(address)
    history = await client.get_workflow_handle(run_id).fetch_history()
    timers = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            timers.append((event.event_type, event.user_metadata.summary.data.decode()))
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            timers.append((event.event_type, event.timer_fired_event_attributes.timer_id))
    return timers


def test_flow_sleep_survives_kill_9_of_the_whole_dev_stack(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    workflow = textwrap.dedent(
        f"""
        name: durable-sleep
        inputs:
          dir: {{type: string, required: true}}
        jobs:
          work:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {{command: 'date +%s.%N >> "$<< inputs.dir >>/before"'}}
              - id: nap
                uses: flow/sleep
                with: {{duration: {SLEEP_SECONDS}s}}
              - uses: exec/shell
                with: {{command: 'date +%s.%N >> "$<< inputs.dir >>/after"'}}
        """
    )
    dev = Dev(tmp_path / "data", tmp_path / "dev.log")
    try:
        dev.start()
        with Client(dev.url) as client:
            ref = client.submit(workflow, inputs={"dir": str(marks)})
            deadline = time.monotonic() + 60
            while not any(s.id == "nap" and s.status == "running" for _, s in client.get(ref.id).steps()):
                assert time.monotonic() < deadline, "the sleep never started"
                time.sleep(0.1)
        killed = dev.kill_everything()
        assert len(killed) >= 3  # waterflow dev, Temporal, the agent
        assert not (marks / "after").exists()  # killed inside the sleep

        dev.start()  # same data directory, same ports
        with Client(dev.url) as client:
            run = client.wait(ref.id, timeout=180, poll=0.5)
        assert run.succeeded, run.error
        before = [float(x) for x in (marks / "before").read_text().split()]
        after = [float(x) for x in (marks / "after").read_text().split()]
        assert len(before) == 1 and len(after) == 1  # each step ran once
        assert after[0] - before[0] >= SLEEP_SECONDS
        nap = next(s for _, s in run.steps() if s.id == "nap")
        assert nap.status == "success" and nap.outputs["seconds"] == SLEEP_SECONDS
        timers = asyncio.run(sleep_timer_events(f"127.0.0.1:{dev.temporal_port}", ref.id))
        started = [t for t in timers if t[0] == EventType.EVENT_TYPE_TIMER_STARTED]
        # One timer, never started over.
        assert started == [(EventType.EVENT_TYPE_TIMER_STARTED, '"flow/sleep work/nap"')]
        assert len([t for t in timers if t[0] == EventType.EVENT_TYPE_TIMER_FIRED]) == 1
    finally:
        dev.stop()
