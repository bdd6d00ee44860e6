"""Child processes of a test: agents and servers in their own session, output captured to a file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Self

from waterflow_agent.command import agent_argv
from waterflow_testing.processes import read_log, spawn_logged, stop_process_blocking

__all__ = ["READY_TIMEOUT", "AgentProcess", "ChildProcess", "pid_alive"]

READY_TIMEOUT = 60.0


class ChildProcess:
    """A child process of a test: own session, dies with the test run, output captured to a file.

    The base of :class:`AgentProcess` and ``waterflow_testing.server.ServerProcess``. ``label``
    names it in failure messages.
    """

    label = "child process"

    def __init__(
        self,
        command: Sequence[str],
        *,
        workdir: Path,
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.command = list(command)
        self.workdir = workdir
        self.log_path = log_path
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Spawn the process (in its own session, like a service manager would)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._process, _ = spawn_logged(self.command, self.log_path, env=self.env, cwd=self.workdir)
        return self

    @property
    def process(self) -> subprocess.Popen[bytes]:
        """The running child (after :meth:`start`)."""
        if self._process is None:
            raise RuntimeError(f"{self.label} was not started")
        return self._process

    @property
    def pid(self) -> int:
        """Process id of the child."""
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """Exit status, or ``None`` while running (or not started)."""
        return None if self._process is None else self._process.poll()

    @property
    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        return read_log(self.log_path)

    def wait_for_output(self, pattern: str, timeout: float = READY_TIMEOUT, *, start: int = 0) -> str:
        """Block until a line matching ``pattern`` (a regex) appears; return that line."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.output[start:].splitlines():
                if regex.search(line):
                    return line
            if self.returncode is not None:
                raise AssertionError(
                    f"{self.label} exited with {self.returncode} before printing "
                    f"{pattern!r}:\n{self.output}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.label} did not print {pattern!r} within {timeout:.0f}s:\n{self.output}"
                )
            time.sleep(0.05)

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the process (not its whole group) unless it already exited."""
        if self.returncode is None:
            self.process.send_signal(sig)

    def terminate(self) -> None:
        """SIGTERM: the graceful shutdown path."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: the crash path (no cleanup)."""
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for exit and return the status (raises ``subprocess.TimeoutExpired``)."""
        return self.process.wait(timeout)

    def stop(self, grace: float = 30.0) -> int:
        """Terminate, then kill if it is still running after ``grace`` seconds; the exit status."""
        if self._process is None:
            return 0
        return stop_process_blocking(self._process, grace)


class AgentProcess(ChildProcess):
    """A ``python -P -m waterflow_agent`` child process, with its output captured to a file."""

    def __init__(
        self,
        name: str,
        groups: Sequence[str],
        *,
        address: str,
        namespace: str = "default",
        workdir: Path,
        env: Mapping[str, str] | None = None,
        pythonpath: Iterable[str | os.PathLike[str]] = (),
        args: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.label = f"agent {name}"
        self.groups = list(groups)
        command = agent_argv(
            name,
            self.groups,
            temporal_address=address,
            namespace=namespace,
            workdir=workdir / "work",
            args=args,
        )
        super().__init__(command, workdir=workdir, log_path=workdir / f"agent-{name}.log", env=env)
        extra_path = [str(p) for p in pythonpath]
        if extra_path:
            existing = self.env.get("PYTHONPATH")
            self.env["PYTHONPATH"] = os.pathsep.join([*extra_path, *([existing] if existing else [])])

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> AgentProcess:
        """Block until the agent prints its ``ready`` line (it is polling every queue)."""
        self.wait_for_output(r"\bready\b", timeout)
        return self


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: it exists and is neither a zombie nor dead (Linux ``/proc``)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")
