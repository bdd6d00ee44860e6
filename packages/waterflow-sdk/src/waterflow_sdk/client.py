"""The synchronous client: ``Client("http://127.0.0.1:8080").submit("hello.yaml")``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
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

__all__ = ["Client"]


class Client:
    """A Waterflow API client over ``httpx.Client``; every endpoint of the API is a method.

    ``server`` defaults to ``$WATERFLOW_SERVER`` or ``http://127.0.0.1:8080``; ``token`` (the
    API's bearer token) to ``$WATERFLOW_API_TOKEN``, and is sent as ``Authorization: Bearer``
    (``token=""`` sends none; an ``Authorization`` entry in ``headers`` wins over both).
    ``retry`` says how requests are sent again after connection errors (:class:`Retry`: by
    default 4 tries, for requests that are safe to repeat). Errors are raised as
    :class:`WaterflowAPIError` (the server said no) or :class:`WaterflowConnectionError` (it
    could not be reached). Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        server: str | None = None,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
        retry: p.Retry = p.DEFAULT_RETRY,
    ) -> None:
        self.server = p.server_url(server)
        self.retry = retry
        self._http = httpx.Client(
            base_url=self.server,
            timeout=timeout,
            headers=p.request_headers(headers, token),
            transport=transport,
        )

    # -- plumbing ------------------------------------------------------------------------------

    def _exchange(self, call: p.Call) -> tuple[httpx.Response, int]:
        """Send ``call`` (again, as :attr:`retry` allows); the response and the tries it took."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(call.method, call.path, params=call.params or None, json=call.json)
            except httpx.HTTPError as exc:
                delay = self.retry.delay(call, exc, attempt)
                if delay is None:
                    raise p.connection_error(self.server, exc) from None
                time.sleep(delay)
            else:
                return response, attempt

    def _send(self, call: p.Call) -> httpx.Response:
        return self._exchange(call)[0]

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
        limit: str | Sequence[str] | None = None,
        check: bool = False,
    ) -> RunRef:
        """Start a run of ``workflow`` (YAML text, or a path: ``Path`` or a one-line ``str``).

        ``id`` is the run id and an idempotency key (ADR 0009): an id whose run finished returns
        that run with ``created=False``; one that is running raises a 409
        :class:`WaterflowAPIError`. With an ``id`` a submission whose answer was lost is sent
        again, and the run the lost try started is returned. ``limit`` restricts each-server jobs
        to the servers it matches (``"web-1,web-[2-3],group:db"``: names, globs, ``group:``).
        ``check`` starts a check run: steps with ``check:`` run it instead of themselves, the
        others are skipped, nothing is compensated (ADR 0041).
        """
        call = p.submit_call(p.workflow_text(workflow), inputs, id, limit, check)
        response, attempts = self._exchange(call)
        return p.submitted(response, call, retried=attempts > 1)

    def get(self, id: str) -> Run:
        """The run with its job/step tree (statuses, outputs, errors, compensations)."""
        return p.parse(self._send(p.get_call(id)), Run)

    def snapshot(self, id: str) -> RunSnapshot:
        """What the run was started with: the workflow text as submitted, the validated workflow and
        the typed inputs."""
        return p.parse(self._send(p.snapshot_call(id)), RunSnapshot)

    def wait(self, id: str, timeout: float | None = None, poll: float = 1.0) -> Run:
        """Poll every ``poll`` seconds until the run finishes and return it.

        Raises :class:`RunTimeoutError` after ``timeout`` seconds (the run goes on).
        """
        waiting = p.Waiting(id, timeout, poll)
        while True:
            run = self.get(id)
            delay = waiting.delay(run)
            if delay is None:
                return run
            time.sleep(delay)

    def rerun(
        self, id: str, *, failed_only: bool = False, from_step: str | None = None, new_id: str | None = None
    ) -> RunRef:
        """Start a new run of finished run ``id`` with its workflow and inputs, skipping what succeeded.

        ``failed_only`` skips the jobs and servers that succeeded; ``from_step`` (``job/step``)
        resumes that job at that step. Skipped steps keep their outputs and read ``skipped`` with
        ``succeeded_in``. ``new_id`` names the rerun and makes the call idempotent (ADR 0039).
        """
        call = p.rerun_call(id, failed_only, from_step, new_id)
        response, attempts = self._exchange(call)
        return p.submitted(response, call, retried=attempts > 1)

    def cancel(self, id: str) -> CancelResult:
        """Ask a running run to stop: running steps are cancelled, completed ones compensated."""
        return p.parse(self._send(p.cancel_call(id)), CancelResult)

    def signal(
        self, id: str, name: str, data: Mapping[str, Any] | None = None, *, decision: str = "approve"
    ) -> p.SignalAccepted:
        """Answer the approval gates of run ``id`` waiting for signal ``name`` (``flow/approval``).

        ``data`` holds the gate's typed fields; ``decision`` is ``approve`` or ``reject``. The
        server refuses (403/409/422, as :class:`WaterflowAPIError`) a token that is not an
        approver, a run not waiting for ``name``, or data that does not fit.
        """
        return p.parse(self._send(p.signal_call(id, name, data, decision)), p.SignalAccepted)

    # -- schedules -----------------------------------------------------------------------------

    def create_schedule(
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
        """Create a schedule that runs ``workflow`` with ``inputs`` (validated and typed once, now).

        ``cron`` is a 5-field expression (or a list), ``interval`` a duration (``30s``, ``5m``,
        seconds); give one or both. ``overlap`` is ``skip``, ``buffer-one``, ``buffer-all``,
        ``cancel-other`` or ``allow-all``. A bad one is a 422 :class:`WaterflowAPIError` naming
        the field; an ``id`` in use a 409.
        """
        call = s.create_call(
            p.workflow_text(workflow), cron=cron, interval=interval, inputs=inputs, schedule_id=id,
            timezone=timezone, overlap=overlap, paused=paused, note=note,
        )
        return p.parse(self._send(call), Schedule)

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by id."""
        return p.parse_items(self._send(s.list_call()), "schedules", Schedule)

    def get_schedule(self, id: str) -> Schedule:
        """A schedule with its next fire times, recent runs, run count and inputs."""
        return p.parse(self._send(s.get_call(id)), Schedule)

    def pause_schedule(self, id: str) -> Schedule:
        """Stop the schedule firing until :meth:`unpause_schedule`."""
        return p.parse(self._send(s.action_call(id, "pause")), Schedule)

    def unpause_schedule(self, id: str) -> Schedule:
        """Let the schedule fire again from its next matching time."""
        return p.parse(self._send(s.action_call(id, "unpause")), Schedule)

    def trigger_schedule(self, id: str) -> ScheduleTriggered:
        """Start a run of the schedule now (its overlap policy applies)."""
        return p.parse(self._send(s.action_call(id, "trigger")), ScheduleTriggered)

    def delete_schedule(self, id: str) -> None:
        """Delete the schedule (the runs it started are not touched)."""
        p.check(self._send(s.delete_call(id)))

    def list_runs(
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
        """One page of runs, newest first.

        ``status``: one or more of running, succeeded, failed, cancelled, timed_out; ``name``:
        the workflow's name; ``search``: text the run's name or id contains (ignoring case);
        ``since``/``until``: start time (an aware ``datetime``, a ``date``
        or RFC 3339 text; ``since`` inclusive). Only a ``None`` ``next_page_token`` means the end.
        """
        call = p.list_call(status, name, page_size, page_token, since=since, until=until, search=search)
        return p.parse(self._send(call), RunPage)

    def iter_runs(
        self,
        status: str | Iterable[str] | None = None,
        name: str | None = None,
        *,
        since: p.Moment | None = None,
        until: p.Moment | None = None,
        search: str | None = None,
        page_size: int = 100,
    ) -> Iterator[RunSummary]:
        """Every run matching the filters of :meth:`list_runs`, newest first, page after page."""
        token: str | None = None
        while True:
            page = self.list_runs(status, name, page_size, token, since=since, until=until, search=search)
            yield from page.runs
            if not page.next_page_token:
                return
            token = page.next_page_token

    # -- logs ----------------------------------------------------------------------------------

    def follow_logs(self, id: str) -> Iterator[LogEntry]:
        """The run's step events and log lines as they happen, until the run ends.

        Starts with what the run printed so far. A dropped connection or an expired stream is
        reopened (see :class:`Retry`) without repeating entries already yielded.
        """
        return self._follow(id, resume=True)

    def _follow(self, id: str, *, resume: bool) -> Iterator[LogEntry]:
        following = p.Following(id, self.retry, self.server, resume=resume)
        call = following.call
        while True:
            try:
                with self._http.stream(
                    call.method, call.path, params=call.params, timeout=p.STREAM_TIMEOUT
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                    following.opened(response)
                    for line in response.iter_lines():
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
            time.sleep(delay)

    def log_entries(self, id: str, follow: bool = False) -> Iterator[LogEntry]:
        """Step events and log lines so far; with ``follow`` one stream of them, until the run or
        the stream ends (an expired stream raises :class:`WaterflowAPIError` with code
        ``stream_expired``; :meth:`follow_logs` goes on instead)."""
        if follow:
            yield from self._follow(id, resume=False)
            return
        yield from p.log_entries(self._send(p.logs_call(id)))

    def logs(self, id: str, follow: bool = False) -> Iterator[str]:
        """The run's logs as lines of text (``[job/step] line``); with ``follow`` until it ends."""
        for entry in self.log_entries(id, follow=follow):
            yield p.log_line(entry)

    # -- workflows, nodes, agents, operations --------------------------------------------------

    def validate(self, text: str | os.PathLike[str], inputs: Mapping[str, Any] | None = None) -> list[ErrorItem]:
        """Problems the server finds in a workflow (and its ``inputs``, when given); empty when valid."""
        return self.check(text, inputs).errors

    def check(self, text: str | os.PathLike[str], inputs: Mapping[str, Any] | None = None) -> Validation:
        """The server's full verdict on a workflow: problems, and the nodes whose ``with:`` it could not check."""
        return p.validation(self._send(p.validate_call(p.workflow_text(text), inputs)))

    def plan(self, workflow: str | os.PathLike[str], inputs: Mapping[str, Any] | None = None) -> Plan:
        """What a run would do (jobs, steps, live servers, batches), without starting it (``POST /v1/plan``)."""
        from waterflow_core.plan import Plan

        from .plan_view import plan_call

        return p.parse(self._send(plan_call(p.workflow_text(workflow), inputs)), Plan)

    def nodes(self) -> list[Node]:
        """Node types known to the server and its agents, with their input/output schemas."""
        return p.nodes(self._send(p.nodes_call()))

    def agents(self, include_stale: bool = False) -> list[Agent]:
        """Registered agents; ``include_stale`` adds the ones that stopped heartbeating."""
        return p.agents(self._send(p.agents_call(include_stale)))

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` (a 503 still returns its body: it says what is down)."""
        return p.health(self._send(p.health_call()))

    def metrics(self) -> str:
        """``GET /metrics``: the server's Prometheus text (docs/reference/metrics.md)."""
        return p.metrics_text(self._send(p.metrics_call()))
