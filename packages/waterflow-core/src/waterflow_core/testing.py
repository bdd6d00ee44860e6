"""Pytest plugin: a real Temporal and real agent processes for every package's tests.

Registered through the ``pytest11`` entry point, so any environment with waterflow-core installed
gets these fixtures without a conftest:

``temporal_dev``
    Session-scoped :class:`~waterflow_core.devserver.DevServer` on free 127.0.0.1 ports in a temp
    dir, headless. Each pytest-xdist worker is its own session, hence its own server.
``temporal_client``
    Session-scoped client (Waterflow's data converter) for ``temporal_dev``; needs pytest-asyncio.
``task_queue``
    A fresh task queue name per test, so tests never steal each other's tasks.
``start_agent``
    ``start_agent(name, groups, env=..., pythonpath=..., args=...) -> AgentProcess`` runs
    ``python -m waterflow_agent`` against ``temporal_dev``; every agent is stopped after the test.
``step_harness``
    A :class:`~waterflow_core.testing_harness.StepHarness` whose workflow is served for the test:
    ``await step_harness.run(make_step("exec/shell", {...}), queue)`` runs one step on whatever
    agent polls ``queue``, as the interpreter would.

:func:`eventually` polls an async probe until a condition holds (for eventually consistent
things such as visibility), failing after a liveness bound, never asserting on speed.

:func:`write_node_package` writes a node package (module + ``.dist-info`` with a
``waterflow.nodes`` entry point, or one in other plugin groups) into a directory, so tests
exercise real entry point discovery by putting that directory on an agent's ``PYTHONPATH``.

Heavy imports happen inside fixtures: pytest loads this module in every run of any project that
has waterflow-core installed.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import signal
import subprocess
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Self, TypeVar

import pytest

from waterflow_core.processes import agent_command, read_log, spawn_logged, stop_process_blocking

if TYPE_CHECKING:
    from temporalio.client import Client

    from waterflow_core.devserver import DevServer
    from waterflow_core.testing_harness import StepHarness

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the plain fixtures still work without it
    pytest_asyncio = None  # type: ignore[assignment]

__all__ = [
    "AgentProcess",
    "ChildProcess",
    "StartAgent",
    "eventually",
    "pid_alive",
    "remove_node_package",
    "start_agent",
    "step_harness",
    "task_queue",
    "temporal_client",
    "temporal_dev",
    "unique_name",
    "write_node_package",
]

READY_TIMEOUT = 60.0
LIVENESS_TIMEOUT = 60.0

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T] | T],
    accept: Callable[[T], bool] = bool,
    *,
    timeout: float = LIVENESS_TIMEOUT,
    interval: float = 0.2,
) -> T:
    """Call ``probe()`` (awaiting it if needed) until ``accept`` holds for its value; return it.

    ``timeout`` is a liveness bound (something is stuck), not a performance expectation.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if accept(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout:.0f}s; last value: {value!r}")
        await asyncio.sleep(interval)


class ChildProcess:
    """A child process of a test: own session, dies with the test run, output captured to a file.

    The base of :class:`AgentProcess` and ``waterflow_server.testing.ServerProcess``. ``label``
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
    """A ``python -m waterflow_agent`` child process, with its output captured to a file."""

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
        command = agent_command(
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


class StartAgent:
    """The ``start_agent`` fixture: ``start_agent(name, groups, ...)`` runs a real agent process.

    Every agent it started is stopped after the test.
    """

    def __init__(self, temporal_dev: DevServer, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._temporal = temporal_dev
        self._tmp_path_factory = tmp_path_factory
        self.agents: list[AgentProcess] = []

    def __call__(
        self,
        name: str,
        groups: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        pythonpath: Iterable[str | os.PathLike[str]] = (),
        args: Sequence[str] = (),
        ready: bool = True,
    ) -> AgentProcess:
        agent = AgentProcess(
            name,
            groups,
            address=self._temporal.address,
            namespace=self._temporal.namespace,
            workdir=self._tmp_path_factory.mktemp(f"agent-{name}"),
            env=env,
            pythonpath=pythonpath,
            args=args,
        )
        self.agents.append(agent.start())
        return agent.wait_ready() if ready else agent

    def stop_all(self) -> None:
        """Stop every agent started so far."""
        for agent in self.agents:
            agent.stop()


def write_node_package(
    root: str | os.PathLike[str],
    distribution: str,
    module: str,
    source: str,
    *,
    version: str = "1.0.0",
    entry_point: str | None = None,
    groups: Sequence[str] = ("waterflow.nodes",),
) -> Path:
    """Install a one-module plugin package into ``root`` the way pip would lay it out.

    Writes ``<root>/<module>.py`` (``source``, dedented) and a ``.dist-info`` whose
    ``entry_points.txt`` registers ``module`` as ``entry_point`` (default: the module name) in
    each of ``groups`` (default: ``waterflow.nodes``). Any previous version of the same
    distribution is removed first, so calling it again is an upgrade.
    """
    root_path = Path(root)
    root_path.mkdir(parents=True, exist_ok=True)
    remove_node_package(root_path, distribution)
    (root_path / f"{module}.py").write_text(textwrap.dedent(source))
    dist_info = root_path / f"{_normalize(distribution)}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "\n".join(f"[{group}]\n{entry_point or module} = {module}\n" for group in groups)
    )
    return root_path


def remove_node_package(root: str | os.PathLike[str], distribution: str) -> None:
    """Uninstall what :func:`write_node_package` wrote (the module file stays, like a stale .py)."""
    for dist_info in Path(root).glob(f"{_normalize(distribution)}-*.dist-info"):
        for child in dist_info.iterdir():
            child.unlink()
        dist_info.rmdir()


def _normalize(distribution: str) -> str:
    return re.sub(r"[-_.]+", "_", distribution).lower()


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def temporal_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A dev Temporal for this test session (per xdist worker), stopped at the end."""
    from waterflow_core.devserver import DevServer

    # Synchronous start on a private loop: usable from sync and async tests alike.
    server = DevServer(tmp_path_factory.mktemp("temporal"), headless=True)
    server.start_blocking()
    try:
        yield server
    finally:
        server.stop_blocking()


if pytest_asyncio is not None:

    @pytest_asyncio.fixture(scope="session", loop_scope="session")
    async def temporal_client(temporal_dev: DevServer) -> AsyncIterator[Client]:
        """A client for ``temporal_dev`` with Waterflow's data converter."""
        from waterflow_core.temporal import connect

        yield await connect(temporal_dev.address, temporal_dev.namespace)

    @pytest_asyncio.fixture(loop_scope="session")
    async def step_harness(temporal_client: Client, task_queue: str) -> AsyncIterator[StepHarness]:
        """Runs single steps through Temporal; its workflow is served during the test."""
        from waterflow_core.testing_harness import StepHarness

        harness = StepHarness(temporal_client, task_queue)
        async with harness.serve():
            yield harness


@pytest.fixture
def task_queue() -> str:
    """A task queue name no other test uses."""
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def start_agent(
    temporal_dev: DevServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartAgent]:
    """Factory that starts real agent processes and stops them after the test."""
    starter = StartAgent(temporal_dev, tmp_path_factory)
    yield starter
    starter.stop_all()


def unique_name(prefix: str = "agent") -> str:
    """A name no other test uses (agent names are global in the namespace)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
