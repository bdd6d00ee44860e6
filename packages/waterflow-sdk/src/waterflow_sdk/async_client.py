"""The asynchronous client: ``await AsyncClient().submit("hello.yaml")``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx

from . import _protocol as p
from . import schedules as s
from .errors import WaterflowAPIError
from .models import (
    Agent,
    CancelResult,
    ErrorItem,
    LogEntry,
    Node,
    Run,
    RunPage,
    RunRef,
    RunSnapshot,
    RunSummary,
    Validation,
)
from .schedules import Schedule, ScheduleTriggered

if TYPE_CHECKING:  # imported when used: it pulls in the expression engine
    from waterflow_core.plan import Plan

__all__ = ["AsyncClient"]


class AsyncClient:
    """The asynchronous twin of :class:`Client`: the same methods and arguments, awaited.

    ``follow_logs``, ``log_entries``, ``logs`` and ``iter_runs`` are async iterators
    (``async for``). Use it as an async context manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        server: str | None = None,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str | None = None,
        retry: p.Retry = p.DEFAULT_RETRY,
    ) -> None:
        self.server = p.server_url(server)
        self.retry = retry
        self._http = httpx.AsyncClient(
            base_url=self.server,
            timeout=timeout,
            headers=p.request_headers(headers, token),
            transport=transport,
        )

    # -- plumbing ------------------------------------------------------------------------------

    async def _exchange(self, call: p.Call) -> tuple[httpx.Response, int]:
        """Send ``call`` (again, as :attr:`retry` allows); the response and the tries it took."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(call.method, call.path, params=call.params or None, json=call.json)
            except httpx.HTTPError as exc:
                delay = self.retry.delay(call, exc, attempt)
                if delay is None:
                    raise p.connection_error(self.server, exc) from None
                await asyncio.sleep(delay)
            else:
                return response, attempt

    async def _send(self, call: p.Call) -> httpx.Response:
        return (await self._exchange(call))[0]

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- runs ----------------------------------------------------------------------------------

    async def submit(
        self,
        workflow: str | os.PathLike[str],
        inputs: Mapping[str, Any] | None = None,
        id: str | None = None,
        limit: str | Sequence[str] | None = None,
        check: bool = False,
    ) -> RunRef:
        """Start a run of ``workflow`` (YAML text or a path); ``id`` is an idempotency key,
        ``limit`` restricts each-server jobs and ``check`` starts a check run (see :meth:`Client.submit`)."""
        text = await asyncio.to_thread(p.workflow_text, workflow)
        call = p.submit_call(text, inputs, id, limit, check)
        response, attempts = await self._exchange(call)
        return p.submitted(response, call, retried=attempts > 1)

    async def get(self, id: str) -> Run:
        """The run with its job/step tree (statuses, outputs, errors, compensations)."""
        return p.parse(await self._send(p.get_call(id)), Run)

    async def snapshot(self, id: str) -> RunSnapshot:
        """What the run was started with: the workflow text as submitted, the validated workflow and
        the typed inputs."""
        return p.parse(await self._send(p.snapshot_call(id)), RunSnapshot)

    async def wait(self, id: str, timeout: float | None = None, poll: float = 1.0) -> Run:
        """Poll until the run finishes; raise :class:`RunTimeoutError` after ``timeout`` seconds."""
        waiting = p.Waiting(id, timeout, poll)
        while True:
            run = await self.get(id)
            delay = waiting.delay(run)
            if delay is None:
                return run
            await asyncio.sleep(delay)

    async def rerun(
        self, id: str, *, failed_only: bool = False, from_step: str | None = None, new_id: str | None = None
    ) -> RunRef:
        """Start a new run of finished run ``id`` skipping what succeeded (see :meth:`Client.rerun`)."""
        call = p.rerun_call(id, failed_only, from_step, new_id)
        response, attempts = await self._exchange(call)
        return p.submitted(response, call, retried=attempts > 1)

    async def cancel(self, id: str) -> CancelResult:
        """Ask a running run to stop: running steps are cancelled, completed ones compensated."""
        return p.parse(await self._send(p.cancel_call(id)), CancelResult)

    async def signal(
        self, id: str, name: str, data: Mapping[str, Any] | None = None, *, decision: str = "approve"
    ) -> p.SignalAccepted:
        """Answer the approval gates of run ``id`` waiting for signal ``name`` (see :meth:`Client.signal`)."""
        return p.parse(await self._send(p.signal_call(id, name, data, decision)), p.SignalAccepted)

    # -- schedules -----------------------------------------------------------------------------

    async def create_schedule(
        self,
        workflow: str | os.PathLike[str],
        *,
        cron: str | Sequence[str] | None = None,
        interval: str | float | None = None,
        inputs: Mapping[str, Any] | None = None,
        id: str | None = None,
        timezone: str = "UTC",
        overlap: str = "skip",
        paused: bool = False,
        note: str = "",
    ) -> Schedule:
        """Create a schedule (see :meth:`Client.create_schedule`)."""
        text = await asyncio.to_thread(p.workflow_text, workflow)
        call = s.create_call(
            text, cron=cron, interval=interval, inputs=inputs, schedule_id=id,
            timezone=timezone, overlap=overlap, paused=paused, note=note,
        )
        return p.parse(await self._send(call), Schedule)

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, by id."""
        return p.parse_items(await self._send(s.list_call()), "schedules", Schedule)

    async def get_schedule(self, id: str) -> Schedule:
        """A schedule with its next fire times, recent runs, run count and inputs."""
        return p.parse(await self._send(s.get_call(id)), Schedule)

    async def pause_schedule(self, id: str) -> Schedule:
        """Stop the schedule firing until :meth:`unpause_schedule`."""
        return p.parse(await self._send(s.action_call(id, "pause")), Schedule)

    async def unpause_schedule(self, id: str) -> Schedule:
        """Let the schedule fire again from its next matching time."""
        return p.parse(await self._send(s.action_call(id, "unpause")), Schedule)

    async def trigger_schedule(self, id: str) -> ScheduleTriggered:
        """Start a run of the schedule now (its overlap policy applies)."""
        return p.parse(await self._send(s.action_call(id, "trigger")), ScheduleTriggered)

    async def delete_schedule(self, id: str) -> None:
        """Delete the schedule (the runs it started are not touched)."""
        p.check(await self._send(s.delete_call(id)))

    async def list_runs(
        self,
        status: str | Iterable[str] | None = None,
        name: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
        *,
        since: p.Moment | None = None,
        until: p.Moment | None = None,
        search: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first (filters: see :meth:`Client.list_runs`)."""
        call = p.list_call(status, name, page_size, page_token, since=since, until=until, search=search)
        return p.parse(await self._send(call), RunPage)

    async def iter_runs(
        self,
        status: str | Iterable[str] | None = None,
        name: str | None = None,
        *,
        since: p.Moment | None = None,
        until: p.Moment | None = None,
        search: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[RunSummary]:
        """Every run matching the filters, newest first, page after page."""
        token: str | None = None
        while True:
            page = await self.list_runs(status, name, page_size, token, since=since, until=until, search=search)
            for run in page.runs:
                yield run
            if not page.next_page_token:
                return
            token = page.next_page_token

    # -- logs ----------------------------------------------------------------------------------

    def follow_logs(self, id: str) -> AsyncIterator[LogEntry]:
        """The run's step events and log lines as they happen, until the run ends (see
        :meth:`Client.follow_logs`)."""
        return self._follow(id, resume=True)

    async def _follow(self, id: str, *, resume: bool) -> AsyncIterator[LogEntry]:
        following = p.Following(id, self.retry, self.server, resume=resume)
        call = following.call
        while True:
            try:
                async with self._http.stream(
                    call.method, call.path, params=call.params, timeout=p.STREAM_TIMEOUT
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                    following.opened(response)
                    async for line in response.aiter_lines():
                        entry = following.feed(line)
                        if entry is not None:
                            yield entry
                        if following.ended:
                            return
                delay = following.closed()
            except (httpx.HTTPError, WaterflowAPIError) as exc:
                delay = following.broken(exc)
            if delay is None:
                return
            await asyncio.sleep(delay)

    async def log_entries(self, id: str, follow: bool = False) -> AsyncIterator[LogEntry]:
        """Step events and log lines so far; with ``follow`` one stream of them (see
        :meth:`Client.log_entries`)."""
        if follow:
            async for entry in self._follow(id, resume=False):
                yield entry
            return
        for entry in p.log_entries(await self._send(p.logs_call(id))):
            yield entry

    async def logs(self, id: str, follow: bool = False) -> AsyncIterator[str]:
        """The run's logs as lines of text (``[job/step] line``); with ``follow`` until it ends."""
        async for entry in self.log_entries(id, follow=follow):
            yield p.log_line(entry)

    # -- workflows, nodes, agents, operations --------------------------------------------------

    async def validate(self, text: str | os.PathLike[str], inputs: Mapping[str, Any] | None = None) -> list[ErrorItem]:
        """Problems the server finds in a workflow (and its ``inputs``, when given); empty when valid."""
        return (await self.check(text, inputs)).errors

    async def check(self, text: str | os.PathLike[str], inputs: Mapping[str, Any] | None = None) -> Validation:
        """The server's full verdict on a workflow: problems, and the nodes whose ``with:`` it could not check."""
        body = await asyncio.to_thread(p.workflow_text, text)
        return p.validation(await self._send(p.validate_call(body, inputs)))

    async def plan(self, workflow: str | os.PathLike[str], inputs: Mapping[str, Any] | None = None) -> Plan:
        """What a run would do (jobs, steps, live servers, batches), without starting it (``POST /v1/plan``)."""
        from waterflow_core.plan import Plan

        from .plan_view import plan_call

        text = await asyncio.to_thread(p.workflow_text, workflow)
        return p.parse(await self._send(plan_call(text, inputs)), Plan)

    async def nodes(self) -> list[Node]:
        """Node types known to the server and its agents, with their input/output schemas."""
        return p.nodes(await self._send(p.nodes_call()))

    async def agents(self, include_stale: bool = False) -> list[Agent]:
        """Registered agents; ``include_stale`` adds the ones that stopped heartbeating."""
        return p.agents(await self._send(p.agents_call(include_stale)))

    async def health(self) -> dict[str, Any]:
        """``GET /healthz`` (a 503 still returns its body: it says what is down)."""
        return p.health(await self._send(p.health_call()))

    async def metrics(self) -> str:
        """``GET /metrics``: the server's Prometheus text (docs/reference/metrics.md)."""
        return p.metrics_text(await self._send(p.metrics_call()))
