"""The agent ``waterflow dev`` runs for you: a ``python -m waterflow_agent`` child process.

It runs in its own session (a Ctrl-C at the terminal reaches ``waterflow dev`` only, which then
stops the agent first, gracefully), dies with its parent on Linux even after a SIGKILL, and
writes its output to a log file under the data directory. The secrets ``waterflow dev`` took out
of its own environment reach it through an anonymous file, never through its environment
(:func:`waterflow_agent.sensitive_env.handoff_to_child`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from waterflow_agent.command import agent_argv
from waterflow_agent.sensitive_env import handoff_to_child
from waterflow_testing.processes import parent_death_preexec, read_log, stop_process

READY_RE = re.compile(r"\bready\b")


def agent_available() -> bool:
    """Whether ``waterflow-agent`` is installed in this environment."""
    return importlib.util.find_spec("waterflow_agent") is not None


class LocalAgent:
    """One supervised agent process."""

    def __init__(
        self,
        name: str,
        groups: Sequence[str],
        *,
        temporal_address: str,
        namespace: str,
        workdir: Path,
        log_file: Path,
        grace_seconds: float = 10.0,
        secrets: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.groups = list(groups)
        self.temporal_address = temporal_address
        self.namespace = namespace
        self.workdir = workdir
        self.log_file = log_file
        self.grace_seconds = grace_seconds
        self._secrets = dict(secrets or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def command(self) -> list[str]:
        """The command line of the agent."""
        return agent_argv(
            self.name,
            self.groups,
            temporal_address=self.temporal_address,
            namespace=self.namespace,
            workdir=self.workdir,
            args=["--grace", f"{self.grace_seconds:g}s"],
        )

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status once it ended."""
        return self._process.poll() if self._process is not None else None

    def start(self) -> None:
        """Spawn the agent (its output is appended to ``log_file``)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # As waterflow_testing.processes.spawn_logged does, plus the descriptor of the handoff.
        with handoff_to_child(self._secrets, env) as (fd, child_env), self.log_file.open("ab") as out:
            self._log_offset = out.tell()
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env,
                pass_fds=(fd,),
                start_new_session=True,
                # Only prctl (async-signal-safe) runs between fork and exec.
                preexec_fn=parent_death_preexec(),  # noqa: PLW1509
            )

    def output(self) -> str:
        """What the agent printed since it was last started."""
        return read_log(self.log_file, self._log_offset)

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until the agent says it is ready (polling its queues); False on exit or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_RE.search(self.output()):
                return True
            if not self.running:
                return False
            await asyncio.sleep(0.1)
        return False

    async def stop(self) -> None:
        """SIGTERM (running steps get the grace period), then SIGKILL; always reaps."""
        proc, self._process = self._process, None
        if proc is not None:
            await stop_process(proc, self.grace_seconds + 10)
