"""An in-process Waterflow API (real uvicorn, real Temporal dev server) shared by these tests."""

from __future__ import annotations

import asyncio
import textwrap
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from waterflow_server.api.app import create_app
from waterflow_server.serving import start_http, stop_http
from waterflow_server.settings import ServerSettings
from waterflow_testing.devserver import DevServer, free_port


@dataclass
class Api:
    """The running app and an HTTP client for it."""

    url: str
    http: httpx.AsyncClient
    settings: ServerSettings


class ThreadedServer:
    """The app on its own event loop in a thread.

    Sync tests block the session's event loop; a Temporal worker living on that loop would hold
    workflow tasks and queries it cannot process until they time out. Here it never stalls.
    """

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="waterflow-test-api", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(120)
        if self._error is not None:
            raise self._error
        assert self._ready.is_set(), "the API did not start"

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        from waterflow_core.temporal import connect

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        client = await connect(self.settings.temporal.address, self.settings.temporal.namespace)
        app = create_app(self.settings, client=client)
        server, task = await start_http(app, "127.0.0.1", self.settings.port)
        self._ready.set()
        await self._stop.wait()
        await stop_http(server, task)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def api(temporal_dev: DevServer) -> AsyncIterator[Api]:
    """The API with its interpreter worker, on a free 127.0.0.1 port, for the whole session."""
    from waterflow_core.temporal import TemporalSettings

    port = free_port()
    settings = ServerSettings(
        temporal=TemporalSettings(address=temporal_dev.address, namespace=temporal_dev.namespace),
        port=port,
        max_body_bytes=64 * 1024,
        follow_poll_seconds=0.2,
    )
    server = ThreadedServer(settings)
    server.start()
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield Api(url=url, http=http, settings=settings)
    server.stop()


def workflow_yaml(text: str) -> str:
    """Dedent a workflow written inline in a test."""
    return textwrap.dedent(text).lstrip()


@pytest.fixture
def parked_workflow(task_queue: str) -> str:
    """A valid workflow whose only job waits on a group no agent serves (it stays running)."""
    return workflow_yaml(
        f"""
        name: parked
        inputs:
          who: {{type: string, default: world}}
          count: {{type: number, required: false}}
        jobs:
          wait:
            runs-on: {task_queue}
            steps:
              - id: never
                uses: exec/shell
                with: {{command: echo hi}}
        """
    )
