"""The synchronous client: ``Client("http://127.0.0.1:8080").submit("hello.yaml")``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from . import _protocol as p
from .models import Agent, CancelResult, ErrorItem, LogEntry, Node, Run, RunPage, RunRef, Validation

__all__ = ["Client"]


class Client:
    """A Waterflow API client over ``httpx.Client``.

    ``server`` defaults to ``$WATERFLOW_SERVER`` or ``http://127.0.0.1:8080``; ``token`` (the API's
    bearer token) to ``$WATERFLOW_API_TOKEN``, and is sent as ``Authorization: Bearer``. Errors are raised
    as :class:`~waterflow_sdk.errors.WaterflowAPIError` (the server said no) or
    :class:`~waterflow_sdk.errors.WaterflowConnectionError` (it could not be reached).
    """

    def __init__(
        self,
        server: str | None = None,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        self.server = p.server_url(server)
        self._http = httpx.Client(
            base_url=self.server,
            timeout=timeout,
            headers=p.request_headers(headers, token),
            transport=transport,
        )

    # -- plumbing ------------------------------------------------------------------------------

    def _send(self, call: p.Call) -> httpx.Response:
        try:
            return self._http.request(call.method, call.path, params=call.params or None, json=call.json)
        except httpx.HTTPError as exc:
            raise p.connection_error(self.server, exc) from None

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- runs ----------------------------------------------------------------------------------

    def submit(
        self,
        workflow: str | os.PathLike[str],
        inputs: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> RunRef:
        """Start a run of ``workflow`` (YAML text or a path); ``id`` is an idempotency key."""
        call = p.submit_call(p.workflow_text(workflow), inputs, id)
        return p.parse(self._send(call), RunRef)

    def get(self, id: str) -> Run:
        """The run with its job/step tree."""
        return p.parse(self._send(p.get_call(id)), Run)

    def wait(self, id: str, timeout: float | None = None, poll: float = 1.0) -> Run:
        """Poll until the run finishes; raise :class:`RunTimeoutError` after ``timeout`` seconds."""
        waiting = p.Waiting(id, timeout, poll)
        while True:
            run = self.get(id)
            delay = waiting.delay(run)
            if delay is None:
                return run
            time.sleep(delay)

    def cancel(self, id: str) -> CancelResult:
        """Request cancellation of a running run."""
        return p.parse(self._send(p.cancel_call(id)), CancelResult)

    def signal(
        self, id: str, name: str, data: Mapping[str, Any] | None = None, *, decision: str = "approve"
    ) -> p.SignalAccepted:
        """Answer the approval gates of run ``id`` waiting for signal ``name`` (``flow/approval``).

        ``data`` holds the gate's typed fields; ``decision`` is ``approve`` or ``reject``. The
        server refuses (403/409/422, as :class:`~waterflow_sdk.errors.WaterflowAPIError`) a token
        that is not an approver, a run not waiting for ``name``, or data that does not fit.
        """
        return p.parse(self._send(p.signal_call(id, name, data, decision)), p.SignalAccepted)

    def list_runs(
        self,
        status: str | Iterable[str] | None = None,
        name: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first."""
        return p.parse(self._send(p.list_call(status, name, page_size, page_token)), RunPage)

    # -- logs ----------------------------------------------------------------------------------

    def log_entries(self, id: str, follow: bool = False) -> Iterator[LogEntry]:
        """Step events and log lines; with ``follow`` they stream until the run finishes."""
        call = p.logs_call(id, follow)
        if not follow:
            yield from p.log_entries(self._send(call))
            return
        try:
            with self._http.stream(call.method, call.path, params=call.params, timeout=p.STREAM_TIMEOUT) as response:
                if response.status_code >= 400:
                    response.read()
                    raise p.api_error(response)
                follower = p.LogFollower()
                for line in response.iter_lines():
                    entry = follower.feed(line)
                    if entry is not None:
                        yield entry
                    if follower.ended:
                        return
        except httpx.HTTPError as exc:
            raise p.connection_error(self.server, exc) from None

    def logs(self, id: str, follow: bool = False) -> Iterator[str]:
        """The run's logs as lines of text (``[job/step] line``)."""
        for entry in self.log_entries(id, follow=follow):
            yield p.log_line(entry)

    # -- workflows, nodes, agents --------------------------------------------------------------

    def validate(self, text: str | os.PathLike[str], inputs: Mapping[str, Any] | None = None) -> list[ErrorItem]:
        """Problems the server finds in a workflow (empty when it is valid)."""
        return self.check(text, inputs).errors

    def check(self, text: str | os.PathLike[str], inputs: Mapping[str, Any] | None = None) -> Validation:
        """The server's full verdict on a workflow: problems, and the nodes whose ``with:`` it could not check."""
        return p.validation(self._send(p.validate_call(p.workflow_text(text), inputs)))

    def nodes(self) -> list[Node]:
        """Node types known to the server and its agents."""
        return p.nodes(self._send(p.nodes_call()))

    def agents(self, include_stale: bool = False) -> list[Agent]:
        """Registered agents."""
        return p.agents(self._send(p.agents_call(include_stale)))

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` (a 503 still returns its body: it says what is down)."""
        return p.health(self._send(p.health_call()))
