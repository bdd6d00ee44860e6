"""Pytest plugin: real ``waterflow server`` processes and the ``waterflow`` CLI for tests.

Registered through the ``pytest11`` entry point (next to ``waterflow_core.testing``, whose
``temporal_dev`` and ``start_agent`` fixtures these build on):

``start_server``
    ``start_server(temporal_address=None, namespace="default", env=..., args=...) -> ServerProcess``
    runs ``python -m waterflow_server`` on a free 127.0.0.1 port against ``temporal_dev`` (or the
    given address) and waits until ``/healthz`` answers; every server is stopped after the test.
``waterflow_cli``
    ``waterflow_cli(*args, server=url, timeout=...) -> CompletedProcess`` runs the ``waterflow``
    command as a separate process.

Heavy imports happen inside the fixtures: pytest loads this module in every run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

__all__ = ["ServerProcess", "StartServer", "WaterflowCLI", "run_cli", "start_server", "waterflow_cli"]

READY_TIMEOUT = 60.0


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A ``python -m waterflow_server`` child process on 127.0.0.1, output captured to a file."""

    def __init__(
        self,
        temporal_address: str,
        *,
        workdir: Path,
        namespace: str = "default",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.temporal_address = temporal_address
        self.namespace = namespace
        self.port = port or _free_port()
        self.workdir = workdir
        self.log_path = workdir / f"server-{self.port}.log"
        self.command = [
            sys.executable,
            "-m",
            "waterflow_server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--temporal-address",
            temporal_address,
            "--namespace",
            namespace,
            *args,
        ]
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        """Everything the server printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def returncode(self) -> int | None:
        """Exit status, or ``None`` while running."""
        return None if self._process is None else self._process.poll()

    def start(self) -> ServerProcess:
        """Spawn the server in its own session."""
        from waterflow_core.devserver import parent_death_preexec

        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.workdir,
                start_new_session=True,
                preexec_fn=parent_death_preexec(),
            )
        return self

    def health(self) -> dict[str, Any] | None:
        """``/healthz`` as JSON, or ``None`` if the server does not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=3) as response:  # noqa: S310 - 127.0.0.1
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as err:
            return dict(json.loads(err.read() or b"{}"))
        except (OSError, ValueError):
            return None

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> ServerProcess:
        """Block until ``/healthz`` says ok (Temporal reachable, worker running)."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if health and health.get("status") == "ok":
                return self
            if self.returncode is not None:
                raise AssertionError(f"waterflow server exited with {self.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"waterflow server not healthy within {timeout:.0f}s ({health}):\n{self.output}"
                )
            time.sleep(0.1)

    def stop(self, grace: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit status."""
        if self._process is None:
            return 0
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        try:
            return self._process.wait(grace)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return self._process.wait()

    def kill(self) -> None:
        """SIGKILL (the crash path)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


class StartServer(Protocol):
    """Signature of the ``start_server`` fixture."""

    def __call__(
        self,
        temporal_address: str | None = None,
        *,
        namespace: str = "default",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        ready: bool = True,
    ) -> ServerProcess: ...


def run_cli(
    *args: str, server: str | None = None, timeout: float = 120.0, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``waterflow ARGS`` as a child process and capture its output."""
    environ = {**os.environ, **(env or {})}
    if server:
        environ["WATERFLOW_SERVER"] = server
    return subprocess.run(
        [sys.executable, "-m", "waterflow_sdk", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        stdin=subprocess.DEVNULL,
    )


class WaterflowCLI(Protocol):
    """Signature of the ``waterflow_cli`` fixture."""

    def __call__(
        self,
        *args: str,
        server: str | None = None,
        timeout: float = 120.0,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def start_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartServer]:
    """Factory that runs real ``waterflow server`` processes and stops them after the test."""
    servers: list[ServerProcess] = []

    def start(
        temporal_address: str | None = None,
        *,
        namespace: str = "default",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        ready: bool = True,
    ) -> ServerProcess:
        if temporal_address is None:
            temporal_address = request.getfixturevalue("temporal_dev").address
        server = ServerProcess(
            temporal_address,
            workdir=tmp_path_factory.mktemp("server"),
            namespace=namespace,
            port=port,
            env=env,
            args=args,
        )
        servers.append(server.start())
        return server.wait_ready() if ready else server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def waterflow_cli() -> WaterflowCLI:
    """Run the ``waterflow`` CLI as a separate process."""
    return run_cli
