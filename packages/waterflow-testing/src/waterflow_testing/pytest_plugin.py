"""Pytest plugin: a real Temporal and real agent processes for every package's tests.

Opt-in: load it with ``pytest -p waterflow_testing.pytest_plugin`` (this repository does so in
``pytest.ini``) or ``pytest_plugins = ["waterflow_testing.pytest_plugin"]`` in a root ``conftest.py``.
Fixtures:

``temporal_dev``
    Session-scoped :class:`~waterflow_testing.devserver.DevServer` on free 127.0.0.1 ports in a temp
    dir, headless. Each pytest-xdist worker is its own session, hence its own server.
``temporal_client``
    Session-scoped client (Waterflow's data converter) for ``temporal_dev``; needs pytest-asyncio.
``task_queue``
    A fresh task queue name per test, so tests never steal each other's tasks.
``start_agent``
    ``start_agent(name, groups, env=..., pythonpath=..., args=...) -> AgentProcess`` runs
    ``python -P -m waterflow_agent`` against ``temporal_dev``; every agent is stopped after the test.
``step_harness``
    A :class:`~waterflow_testing.harness.StepHarness` whose workflow is served for the test:
    ``await step_harness.run(make_step("exec/shell", {...}), queue)`` runs one step on whatever
    agent polls ``queue``, as the interpreter would.

:func:`eventually` polls an async probe until a condition holds (for eventually consistent
things such as visibility), failing after a liveness bound, never asserting on speed.

:func:`write_node_package` writes a node package (module + ``.dist-info`` with a
``waterflow.nodes`` entry point, or one in other plugin groups) into a directory, so tests
exercise real entry point discovery by putting that directory on an agent's ``PYTHONPATH``.

``tls_certs``
    Session-scoped :class:`~waterflow_testing.certs.TestCerts`: a CA made in the test, server,
    client, wrong-host and rogue certificates (``openssl``); see also
    :class:`~waterflow_testing.tlsproxy.TLSProxy`.

``start_server`` and ``waterflow_cli`` come from :mod:`waterflow_testing.server`;
``docker_test_image`` (the offline busybox image, skipped without Docker except in CI) from
:mod:`waterflow_testing.docker`; ``chromium_browser`` and ``browser_page`` (headless Chromium
through Playwright, skipped without it except in CI) from :mod:`waterflow_testing.browser`. Heavy imports
(Temporal) happen inside the fixtures.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import pytest

from waterflow_testing.browser import browser_page, chromium_browser
from waterflow_testing.children import AgentProcess
from waterflow_testing.docker import docker_test_image
from waterflow_testing.server import start_server, waterflow_cli

if TYPE_CHECKING:
    from temporalio.client import Client

    from waterflow_testing.certs import TestCerts
    from waterflow_testing.devserver import DevServer
    from waterflow_testing.harness import StepHarness

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the plain fixtures still work without it
    pytest_asyncio = None  # type: ignore[assignment]

__all__ = [
    "StartAgent",
    "browser_page",
    "chromium_browser",
    "docker_test_image",
    "eventually",
    "start_agent",
    "start_server",
    "step_harness",
    "task_queue",
    "temporal_client",
    "temporal_dev",
    "tls_certs",
    "unique_name",
    "waterflow_cli",
]

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


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def temporal_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A dev Temporal for this test session (per xdist worker), stopped at the end."""
    from waterflow_testing.devserver import DevServer

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
        from waterflow_testing.harness import StepHarness

        harness = StepHarness(temporal_client, task_queue)
        async with harness.serve():
            yield harness


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    """A CA made for this session with server, client, wrong-host and rogue certificates."""
    from waterflow_testing.certs import make_test_certs

    return make_test_certs(tmp_path_factory.mktemp("certs"))


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
