"""``waterflow dev``: embedded Temporal + API server + one local agent, started and stopped in order.

Start order: Temporal (unless an address is given), the API server with the interpreter worker,
then the agent; ``ready`` is printed once the agent polls its queues. Stop order is the reverse,
so no process ever loses the one it talks to while it still has work in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_TEMPORAL_PORT = 7233
DEFAULT_UI_PORT = 8233
AGENT_READY_TIMEOUT = 60.0
AGENT_RESTART_LIMIT = 5
"""Restarts of a crashing local agent within :data:`AGENT_RESTART_WINDOW` before giving up."""
AGENT_RESTART_WINDOW = 60.0


class DevError(Exception):
    """Something ``waterflow dev`` cannot work around; reported in one line."""


@dataclass
class DevOptions:
    """What ``waterflow dev`` was asked for."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    temporal_address: str | None = None
    namespace: str = "default"
    temporal_port: int | None = None
    ui_port: int | None = None
    headless: bool = False
    retention: timedelta = timedelta(days=30)
    agent: bool = True
    agent_name: str = "local"
    agent_groups: list[str] = field(default_factory=lambda: ["local"])
    agent_grace: float = 10.0
    temporal_ui_url: str | None = None
    """The configured Temporal UI (console.temporal_ui_url); the embedded Temporal's own UI when unset."""
    access: dict[str, Any] = field(default_factory=dict)
    """Tokens, allowed hosts and origins (:func:`~waterflow_server.cli.server.access_settings`)."""
    providers: dict[str, Any] = field(default_factory=dict)
    """Event handlers and the server group provider (:func:`~waterflow_server.cli.server.provider_settings`)."""
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    """The sensitive variables taken out of the environment: Temporal's API key, the agent's secrets."""


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def missing_dev_extra() -> str | None:
    """The distribution ``waterflow dev`` needs that is not installed (the embedded Temporal), if any.

    The agent is optional (``--no-agent``); its absence is reported when the agent would start.
    """
    if importlib.util.find_spec("waterflow_testing") is None:
        return "waterflow-testing (the embedded Temporal)"
    return None


def choose_ports(options: DevOptions) -> tuple[int, int | None]:
    """Temporal's ports: asked for, else the ones this data dir used last, else 7233/8233, else free.

    Re-using the last ports means a restart on the same data dir comes back at the same address.
    """
    from waterflow_testing.devserver import free_port

    state_file = options.data_dir / "dev.json"
    saved: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        saved = json.loads(state_file.read_text())

    def pick(asked: int | None, key: str, default: int) -> int:
        if asked:
            return asked
        for candidate in (saved.get(key), default):
            if isinstance(candidate, int) and _port_free(options.host, candidate):
                return candidate
        return free_port(options.host)

    port = pick(options.temporal_port, "temporal_port", DEFAULT_TEMPORAL_PORT)
    ui_port = None if options.headless else pick(options.ui_port, "ui_port", DEFAULT_UI_PORT)
    return port, ui_port


def save_ports(options: DevOptions, port: int, ui_port: int | None) -> None:
    """Remember the ports for the next start on this data dir."""
    state = {"temporal_port": port, "ui_port": ui_port}
    with contextlib.suppress(OSError):
        (options.data_dir / "dev.json").write_text(json.dumps(state) + "\n")


class DevStack:
    """The running pieces of ``waterflow dev``."""

    def __init__(self, options: DevOptions, say: Callable[[str], None]) -> None:
        self.options = options
        self.say = say
        self.devserver: Any = None
        self.http: Any = None
        self.http_task: asyncio.Task[None] | None = None
        self.agent: Any = None
        self.temporal_address = options.temporal_address or ""
        self.ui_url: str | None = None
        self._restarts: list[float] = []

    @property
    def api_url(self) -> str:
        """Where the API listens."""
        return f"http://{self.options.host}:{self.options.port}"

    async def start(self) -> None:
        """Start Temporal, the API server and the agent; raise :class:`DevError` on failure."""
        self.options.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.options.temporal_address:
            await self._start_temporal()
        await self._start_api()
        if self.options.agent:
            await self._start_agent()

    async def _start_temporal(self) -> None:
        from waterflow_testing.devserver import DevServer, DevServerError

        port, ui_port = choose_ports(self.options)
        self.devserver = DevServer(
            self.options.data_dir / "temporal",
            port=port,
            ui_port=ui_port,
            headless=self.options.headless,
            namespace=self.options.namespace,
            retention=self.options.retention,
            ip=self.options.host,
        )
        self.say(f"starting Temporal on {self.options.host}:{port} (data in {self.devserver.data_dir})...")
        try:
            await self.devserver.start()
        except DevServerError as exc:
            raise DevError(str(exc)) from None
        save_ports(self.options, port, ui_port)
        self.temporal_address = self.devserver.address
        self.ui_url = self.devserver.ui_url

    async def _start_api(self) -> None:
        from waterflow_core.temporal import TemporalSettings

        from ..api.app import TemporalConnectError, start_api
        from ..serving import ServerStartError
        from ..settings import ServerSettings

        temporal = TemporalSettings.from_env({**os.environ, **self.options.secrets}).model_copy(
            update={"address": self.temporal_address, "namespace": self.options.namespace}
        )
        settings = ServerSettings(
            temporal=temporal,
            host=self.options.host,
            port=self.options.port,
            temporal_ui_url=self.options.temporal_ui_url or self.ui_url,
            **self.options.access,
            **self.options.providers,
        )
        try:
            self.http, self.http_task = await start_api(settings)
        except TemporalConnectError as exc:
            raise DevError(str(exc)) from None
        except ServerStartError as exc:
            raise DevError(f"{exc} (is the port taken? choose another with --port)") from None

    async def _start_agent(self) -> None:
        from .local_agent import LocalAgent, agent_available

        if not agent_available():
            self.say("no local agent: waterflow-agent is not installed (pip install 'waterflow-server[dev]')")
            return
        logs = self.options.data_dir / "logs"
        self.agent = LocalAgent(
            self.options.agent_name,
            self.options.agent_groups,
            temporal_address=self.temporal_address,
            namespace=self.options.namespace,
            workdir=self.options.data_dir / "agent",
            log_file=logs / f"agent-{self.options.agent_name}.log",
            grace_seconds=self.options.agent_grace,
            secrets=self.options.secrets,
        )
        self.agent.start()
        if not await self.agent.wait_ready(AGENT_READY_TIMEOUT):
            tail = "\n".join(self.agent.output().splitlines()[-15:])
            await self.agent.stop()
            raise DevError(f"the local agent did not become ready:\n{tail}")

    def banner(self) -> list[str]:
        """What the user needs to know once everything is up."""
        from ..api.security import auth_summary

        lines = [
            "Waterflow dev is up",
            f"  API:          {self.api_url}   (docs: {self.api_url}/docs)",
            f"  Console:      {self.api_url}/ui/",
            f"  API access:   {auth_summary(self.options.access.get('tokens', ()))}",
            f"  Temporal:     {self.temporal_address} (namespace {self.options.namespace})",
        ]
        if self.ui_url:
            lines.append(f"  Temporal UI:  {self.ui_url}")
        if self.agent is not None:
            groups = ", ".join(self.options.agent_groups)
            lines.append(f"  Agent:        {self.options.agent_name} (runs-on: {groups}); log: {self.agent.log_file}")
        lines.append("ready: try `waterflow submit examples/hello.yaml --wait`; Ctrl-C stops everything")
        return lines

    async def supervise(self, stop: asyncio.Event) -> None:
        """Until ``stop``: restart a crashed agent (a few times), fail if the API or Temporal dies."""
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            if stop.is_set():
                return
            if self.http_task is not None and self.http_task.done():
                raise DevError("the API server stopped unexpectedly")
            if self.devserver is not None and not self.devserver.running:
                raise DevError(f"Temporal stopped unexpectedly; see {self.devserver.log_file}")
            if self.agent is not None and not self.agent.running:
                await self._restart_agent()

    async def _restart_agent(self) -> None:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < AGENT_RESTART_WINDOW] + [now]
        code = self.agent.returncode
        if len(self._restarts) > AGENT_RESTART_LIMIT:
            self.say(f"the local agent keeps exiting (status {code}); not restarting it. See {self.agent.log_file}")
            self.agent = None
            return
        self.say(f"the local agent exited (status {code}); restarting it")
        await self.agent.stop()
        self.agent.start()

    async def stop(self) -> None:
        """Agent, then API server (and its worker), then Temporal."""
        from ..serving import stop_http

        if self.agent is not None:
            await self.agent.stop()
        if self.http is not None and self.http_task is not None:
            await stop_http(self.http, self.http_task)
        if self.devserver is not None:
            await self.devserver.stop()
