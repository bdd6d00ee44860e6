"""Acceptance 1: `waterflow dev` + the hello example, CLI -> REST -> Temporal -> agent and back.

Everything is a real process: `waterflow dev` (embedded Temporal, API server, one local agent)
on free 127.0.0.1 ports, and the `waterflow` CLI. Ctrl-C (SIGINT) stops the whole tree.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow_testing import pid_alive
from waterflow_testing.devserver import free_port
from waterflow_testing.server import run_cli

REPO = Path(__file__).resolve().parents[1]
HELLO = REPO / "examples" / "hello.yaml"
READY_TIMEOUT = 120.0


class DevProcess:
    """`waterflow dev` as a child process, its stdout and stderr in a file."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.temporal_port = free_port()
        self.ui_port = free_port()
        self.data_dir = data_dir
        self.log = log
        command = [
            sys.executable,
            "-m",
            "waterflow_sdk",
            "dev",
            "--data-dir",
            str(data_dir),
            "--port",
            str(self.port),
            "--temporal-port",
            str(self.temporal_port),
            "--ui-port",
            str(self.ui_port),
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("WATERFLOW_TEMPORAL_ADDRESS", None)
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = READY_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.output, re.M)
            if match:
                return match.group(0)
            assert self.process.poll() is None, (
                f"waterflow dev exited with {self.process.returncode}:\n{self.output}"
            )
            assert time.monotonic() < deadline, f"no {pattern!r} within {timeout:.0f}s:\n{self.output}"
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 90.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def children_of(pid: int) -> set[int]:
    """Every descendant process of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    process = DevProcess(tmp_path / "data", tmp_path / "dev.log")
    yield process
    if process.process.poll() is None:
        process.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_hello_through_cli_rest_temporal_and_agent(dev: DevProcess) -> None:
    dev.wait_for(r"^ready\b.*$")
    assert dev.url in dev.output
    assert f"http://127.0.0.1:{dev.ui_port}" in dev.output  # the Temporal UI
    children = children_of(dev.process.pid)
    assert len(children) >= 2  # Temporal and the agent

    result = run_cli("submit", str(HELLO), "-i", "who=e2e", "--wait", server=dev.url)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    run_id = out.splitlines()[0]
    assert "| hello, e2e" in out  # the step's own output
    assert "greeting = hello, e2e" in out  # its output variable
    assert "the first step said 'hello, e2e'" in out  # the second step read steps.say.outputs
    assert out.splitlines()[-1] == f"run {run_id} succeeded"

    default = run_cli("submit", str(HELLO), "--wait", server=dev.url)
    assert default.returncode == 0 and "hello, world" in default.stdout

    assert dev.stop(signal.SIGINT) == 0
    assert "stopped" in dev.output
    assert "Traceback" not in dev.output
    deadline = time.monotonic() + 30
    while any(pid_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if pid_alive(pid)], "waterflow dev left processes behind"


def test_dev_restarts_on_the_same_data_dir_and_keeps_runs(tmp_path: Path) -> None:
    first = DevProcess(tmp_path / "data", tmp_path / "dev1.log")
    try:
        first.wait_for(r"^ready\b.*$")
        result = run_cli("submit", str(HELLO), "--id", "kept-run", "--wait", server=first.url)
        assert result.returncode == 0, result.stderr
    finally:
        assert first.stop(signal.SIGTERM) == 0

    second = DevProcess(tmp_path / "data", tmp_path / "dev2.log")
    try:
        second.wait_for(r"^ready\b.*$")
        status = run_cli("status", "kept-run", "--output", "json", server=second.url)
        assert status.returncode == 0, status.stderr
        assert '"status": "succeeded"' in status.stdout
        again = run_cli("submit", str(HELLO), "--id", "kept-run", server=second.url)
        assert again.returncode == 0 and "already exists" in again.stderr
    finally:
        second.stop()
