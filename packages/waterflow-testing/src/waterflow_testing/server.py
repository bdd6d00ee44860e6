"""Pytest plugin: real ``waterflow server`` processes and the ``waterflow`` CLI for tests.

Part of the opt-in :mod:`waterflow_testing.pytest_plugin` (which also provides the
``temporal_dev`` and ``start_agent`` fixtures these build on):

``start_server``
    ``start_server(temporal_address=None, namespace="default", env=..., args=..., token=None) -> ServerProcess``
    runs ``python -m waterflow_server`` on a free 127.0.0.1 port against ``temporal_dev`` (or the
    given address) and waits until ``/healthz`` answers; every server is stopped after the test.
    With ``token`` the server requires it (``WATERFLOW_API_TOKEN``); ``server.token`` keeps it
    for the client side.
``waterflow_cli``
    ``waterflow_cli(*args, server=url, timeout=...) -> CompletedProcess`` runs the ``waterflow``
    command as a separate process.

Standard library only, so loading the plugin stays cheap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from waterflow_testing.children import READY_TIMEOUT, ChildProcess
from waterflow_testing.processes import free_port

__all__ = ["ServerProcess", "StartServer", "WaterflowCLI", "run_cli", "start_server", "waterflow_cli"]


class ServerProcess(ChildProcess):
    """A ``python -m waterflow_server`` child process on 127.0.0.1, output captured to a file."""

    label = "waterflow server"

    def __init__(
        self,
        temporal_address: str,
        *,
        workdir: Path,
        namespace: str = "default",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        token: str | None = None,
    ) -> None:
        self.temporal_address = temporal_address
        self.namespace = namespace
        self.token = token  # what clients must send; None when authentication is off
        if token is not None:
            env = {**(env or {}), "WATERFLOW_API_TOKEN": token}
        self.port = port or free_port()
        command = [
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
        super().__init__(command, workdir=workdir, log_path=workdir / f"server-{self.port}.log", env=env)

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"http://127.0.0.1:{self.port}"

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
                raise AssertionError(f"{self.label} exited with {self.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.label} not healthy within {timeout:.0f}s ({health}):\n{self.output}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL (the crash path), and reap it."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


class StartServer:
    """The ``start_server`` fixture: ``start_server(temporal_address=None, ...)`` runs a server.

    Without ``temporal_address`` it uses the ``temporal_dev`` fixture. Every server it started is
    stopped after the test.
    """

    def __init__(self, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._request = request
        self._tmp_path_factory = tmp_path_factory
        self.servers: list[ServerProcess] = []
        self.task_queue = f"waterflow-server-{uuid.uuid4().hex[:12]}"
        """The interpreter queue of this test's servers: servers of other tests on the same Temporal
        (other providers, other event handlers) must not run this test's runs."""

    def __call__(
        self,
        temporal_address: str | None = None,
        *,
        namespace: str = "default",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        ready: bool = True,
        token: str | None = None,
    ) -> ServerProcess:
        if temporal_address is None:
            temporal_address = self._request.getfixturevalue("temporal_dev").address
        if "--task-queue" not in args and "WATERFLOW_API_TASK_QUEUE" not in (env or {}):
            args = ["--task-queue", self.task_queue, *args]
        server = ServerProcess(
            temporal_address,
            workdir=self._tmp_path_factory.mktemp("server"),
            namespace=namespace,
            port=port,
            env=env,
            args=args,
            token=token,
        )
        self.servers.append(server.start())
        return server.wait_ready() if ready else server

    def stop_all(self) -> None:
        """Stop every server started so far."""
        for server in self.servers:
            server.stop()


def run_cli(
    *args: str, server: str | None = None, timeout: float = 120.0, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``waterflow ARGS`` as a child process and capture its output."""
    environ = {**os.environ, **(env or {})}
    if server:
        environ["WATERFLOW_SERVER"] = server
    return subprocess.run(  # noqa: PLW1510 - the caller checks the exit status
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
def start_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """Factory that runs real ``waterflow server`` processes and stops them after the test."""
    starter = StartServer(request, tmp_path_factory)
    yield starter
    starter.stop_all()


@pytest.fixture
def waterflow_cli() -> WaterflowCLI:
    """Run the ``waterflow`` CLI as a separate process."""
    return run_cli
