"""The asynchronous client: ``await AsyncClient().submit("hello.yaml")``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from . import _protocol as p
from .models import Agent, CancelResult, ErrorItem, LogEntry, Node, Run, RunPage, RunRef, Validation

__all__ = ["AsyncClient"]


class AsyncClient:
    """The asynchronous twin of :class:`~waterflow_sdk.Client` (same methods, awaited)."""

    def __init__(
        self,
        server: str | None = None,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        self.server = p.server_url(server)
        self._http = httpx.AsyncClient(
            base_url=self.server,
            timeout=timeout,
            headers=p.request_headers(headers, token),
            transport=transport,
        )

    async def _send(self, call: p.Call) -> httpx.Response:
        try:
            return await self._http.request(call.method, call.path, params=call.params or None, json=call.json)
        except httpx.HTTPError as exc:
            raise p.connection_error(self.server, exc) from None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def submit(
        self,
        workflow: str | os.PathLike[str],
        inputs: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> RunRef:
        """Start a run of ``workflow`` (YAML text or a path); ``id`` is an idempotency key."""
        text = await asyncio.to_thread(p.workflow_text, workflow)
        return p.parse(await self._send(p.submit_call(text, inputs, id)), RunRef)

    async def get(self, id: str) -> Run:
        """The run with its job/step tree."""
        return p.parse(await self._send(p.get_call(id)), Run)

    async def wait(self, id: str, timeout: float | None = None, poll: float = 1.0) -> Run:
        """Poll until the run finishes; raise :class:`RunTimeoutError` after ``timeout`` seconds."""
        waiting = p.Waiting(id, timeout, poll)
        while True:
            run = await self.get(id)
            delay = waiting.delay(run)
            if delay is None:
                return run
            await asyncio.sleep(delay)

    async def cancel(self, id: str) -> CancelResult:
        """Request cancellation of a running run."""
        return p.parse(await self._send(p.cancel_call(id)), CancelResult)

    async def signal(
        self, id: str, name: str, data: Mapping[str, Any] | None = None, *, decision: str = "approve"
    ) -> p.SignalAccepted:
        """Answer the approval gates of run ``id`` waiting for signal ``name`` (``flow/approval``).

        ``data`` holds the gate's typed fields; ``decision`` is ``approve`` or ``reject``. The
        server refuses (403/409/422, as :class:`~waterflow_sdk.errors.WaterflowAPIError`) a token
        that is not an approver, a run not waiting for ``name``, or data that does not fit.
        """
        return p.parse(await self._send(p.signal_call(id, name, data, decision)), p.SignalAccepted)

    async def list_runs(
        self,
        status: str | Iterable[str] | None = None,
        name: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first."""
        return p.parse(await self._send(p.list_call(status, name, page_size, page_token)), RunPage)

    async def log_entries(self, id: str, follow: bool = False) -> AsyncIterator[LogEntry]:
        """Step events and log lines; with ``follow`` they stream until the run finishes."""
        call = p.logs_call(id, follow)
        if not follow:
            for entry in p.log_entries(await self._send(call)):
                yield entry
            return
        try:
            async with self._http.stream(
                call.method, call.path, params=call.params, timeout=p.STREAM_TIMEOUT
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise p.api_error(response)
                follower = p.LogFollower()
                async for line in response.aiter_lines():
                    fed = follower.feed(line)
                    if fed is not None:
                        yield fed
                    if follower.ended:
                        return
        except httpx.HTTPError as exc:
            raise p.connection_error(self.server, exc) from None

    async def logs(self, id: str, follow: bool = False) -> AsyncIterator[str]:
        """The run's logs as lines of text (``[job/step] line``)."""
        async for entry in self.log_entries(id, follow=follow):
            yield p.log_line(entry)

    async def validate(self, text: str | os.PathLike[str], inputs: Mapping[str, Any] | None = None) -> list[ErrorItem]:
        """Problems the server finds in a workflow (empty when it is valid)."""
        return (await self.check(text, inputs)).errors

    async def check(self, text: str | os.PathLike[str], inputs: Mapping[str, Any] | None = None) -> Validation:
        """The server's full verdict on a workflow: problems, and the nodes whose ``with:`` it could not check."""
        body = await asyncio.to_thread(p.workflow_text, text)
        return p.validation(await self._send(p.validate_call(body, inputs)))

    async def nodes(self) -> list[Node]:
        """Node types known to the server and its agents."""
        return p.nodes(await self._send(p.nodes_call()))

    async def agents(self, include_stale: bool = False) -> list[Agent]:
        """Registered agents."""
        return p.agents(await self._send(p.agents_call(include_stale)))

    async def health(self) -> dict[str, Any]:
        """``GET /healthz`` (a 503 still returns its body: it says what is down)."""
        return p.health(await self._send(p.health_call()))
