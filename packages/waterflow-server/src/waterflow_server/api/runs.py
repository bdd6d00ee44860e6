"""Runs in Temporal: submit, read, list, cancel and follow them.

Nothing is stored here. A run *is* a ``WaterflowRun`` workflow execution; its status comes from
``describe``, its job/step tree from the ``progress`` query (answered by the interpreter worker,
also for closed runs, by replay), its inputs from the first history event, and live log lines
from the heartbeat details of the step activities that are running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from waterflow_core.dsl import Workflow, load_workflow
from waterflow_core.errors import WorkflowValidationError
from waterflow_core.matrix import job_matrices
from waterflow_core.runs import (
    CHECK_MEMO,
    NAME_MEMO,
    PROGRESS_QUERY,
    SERVER_TASK_QUEUE,
    WORKFLOW_TYPE,
    RunInput,
    RunProgress,
)

from .bodies import Submission
from .logs import LogTracker, progress_steps, snapshot_entries
from .models import CancelAccepted, LogEntry, LogsResponse, RunDetail, RunList, RunRef, RunSummary
from .nodes import NodeDirectory
from .pagination import NOT_ISSUED, PageToken
from .problems import APIError, bad_request, invalid_workflow, not_found, temporal_unavailable
from .rerun_links import reruns_of
from .run_graph import JobGraphs
from .status import api_status, temporal_status_name, visibility_query
from .streams import StreamLimits, stream_expired
from .validation import ValidationPool

log = logging.getLogger(__name__)

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,199}$")
RESERVED_PREFIXES = ("waterflow-agent:",)
QUERY_TIMEOUT = timedelta(seconds=10)
MAX_LIST_SCAN_PAGES = 20
"""A filtered listing looks at no more than this many of Temporal's pages per request."""


def status_url(run_id: str) -> str:
    """Where a run's status lives in this API."""
    return f"/v1/workflows/{quote(run_id, safe='')}"


def new_run_id(name: str) -> str:
    """A fresh run id that reads as the workflow it runs: ``<name-slug>-<12 hex>``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "run"
    return f"{slug}-{uuid.uuid4().hex[:12]}"


def check_run_id(run_id: str) -> None:
    """Refuse ids that are not URL-friendly or that collide with Waterflow's own workflows."""
    if not RUN_ID_RE.match(run_id):
        raise APIError(
            400,
            "invalid_id",
            "id must be 1-200 characters: letters, digits and . _ ~ : - (starting with a letter or digit)",
        )
    if run_id.startswith(RESERVED_PREFIXES):
        raise APIError(400, "invalid_id", f"ids starting with {RESERVED_PREFIXES[0]!r} are reserved")


@contextlib.contextmanager
def temporal_errors(run_id: str | None = None, *, invalid: str | None = None) -> Any:
    """Translate Temporal RPC failures into API errors (404, 503, 502).

    With ``invalid``, any other refusal is the client's doing (400 with that message): the
    request carried something opaque of the client's, like a forged page token.
    """
    try:
        yield
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND and run_id is not None:
            raise not_found(f"no run with id {run_id!r}") from None
        # CANCELLED: the SDK's own rpc_timeout ran out ("Timeout expired"): Temporal did not answer.
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise temporal_unavailable(err.message) from None
        if invalid is not None:
            raise bad_request(invalid) from None
        raise APIError(502, "temporal_error", f"Temporal refused the request: {err.message}") from None


class RunService:
    """The API's view of runs, over one Temporal client."""

    def __init__(
        self,
        client: Client,
        nodes: NodeDirectory,
        *,
        validation: ValidationPool | None = None,
        streams: StreamLimits | None = None,
        task_queue: str = SERVER_TASK_QUEUE,
    ) -> None:
        self.client = client
        self.nodes = nodes
        self.task_queue = task_queue
        """Where the runs this service starts go (the interpreter worker's queue)."""
        self.validation = validation or ValidationPool()
        self.streams = streams or StreamLimits()
        self.graphs = JobGraphs()

    # -- validation and submission -----------------------------------------------------------

    async def validate(self, text: str, source: str | None = None) -> Workflow:
        """Load ``text`` with node checks; raise a 422 :class:`APIError` listing every problem."""
        checker = await self.nodes.checker()
        try:
            return await self.validation.run(lambda: load_workflow(text, source=source, node_checker=checker))
        except WorkflowValidationError as exc:
            if not checker.unknown:
                raise invalid_workflow(exc) from None
        # An agent may have come up since the catalog was cached: look once more.
        fresh = await self.nodes.checker(refresh=True)
        try:
            return await self.validation.run(lambda: load_workflow(text, source=source, node_checker=fresh))
        except WorkflowValidationError as exc:
            raise invalid_workflow(exc) from None

    @staticmethod
    def plan(workflow: Workflow, given: dict[str, Any], source: str = "") -> RunInput:
        """The run's snapshot (inputs typed), or a 422 listing each unknown, missing or mistyped input."""
        try:
            return RunInput.plan(workflow, given, source=source)
        except WorkflowValidationError as exc:
            raise invalid_workflow(exc) from None

    @staticmethod
    def check_inputs(workflow: Workflow, given: dict[str, Any]) -> dict[str, Any]:
        """Typed inputs, or a 422 listing each unknown, missing or mistyped input."""
        return RunService.plan(workflow, given).inputs

    async def submit(self, submission: Submission) -> RunRef:
        """Start a run (``created=True``), or return the finished run an id already names.

        Raises 409 when the id names a run that is still running (see ADR 0009).
        """
        if submission.id is not None:
            check_run_id(submission.id)
        workflow = await self.validate(submission.workflow)
        run = self.plan(workflow, submission.inputs, submission.workflow)
        if submission.limit is not None:
            run = run.model_copy(update={"limit": submission.limit})
        if submission.check:
            run = run.model_copy(update={"check": True})
        run_id = submission.id or new_run_id(workflow.name)
        if submission.id is not None:
            existing = await self._existing(run_id)
            if existing is not None:
                return existing
        from waterflow_core.interpreter import start_run

        try:
            with temporal_errors():
                handle = await start_run(self.client, run, workflow_id=run_id, task_queue=self.task_queue)
        except WorkflowAlreadyStartedError:
            existing = await self._existing(run_id)
            if existing is not None:
                return existing
            raise APIError(409, "conflict", f"a run with id {run_id!r} already exists") from None
        return RunRef(
            id=run_id,
            run_id=handle.result_run_id or handle.run_id or "",
            status_url=status_url(run_id),
            created=True,
        )

    async def _existing(self, run_id: str) -> RunRef | None:
        """The run already holding ``run_id``: ``None`` if free, a ref if closed, 409 if running."""
        try:
            with temporal_errors(run_id):
                description = await self.client.get_workflow_handle(run_id).describe(rpc_timeout=QUERY_TIMEOUT)
        except APIError as err:
            if err.status == 404:
                return None
            raise
        ref = RunRef(id=run_id, run_id=description.run_id, status_url=status_url(run_id), created=False)
        if description.workflow_type != WORKFLOW_TYPE:
            raise APIError(409, "conflict", f"id {run_id!r} is taken by another kind of workflow")
        if description.status == WorkflowExecutionStatus.RUNNING:
            raise APIError(
                409,
                "conflict",
                f"a run with id {run_id!r} is already running",
                extra=ref.model_dump(exclude={"created"}),
            )
        return ref

    # -- reading -----------------------------------------------------------------------------

    async def describe(self, run_id: str) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
        """Handle and description of a Waterflow run; 404 for unknown ids and non-runs."""
        handle = self.client.get_workflow_handle(run_id)
        with temporal_errors(run_id):
            description = await handle.describe()
        if description.workflow_type != WORKFLOW_TYPE:
            raise not_found(f"no run with id {run_id!r}")
        return handle, description

    async def progress(
        self, handle: WorkflowHandle[Any, Any], description: WorkflowExecutionDescription
    ) -> RunProgress | None:
        """The run's job/step tree: the ``progress`` query, else the result; ``None`` if neither."""
        try:
            return await handle.query(PROGRESS_QUERY, result_type=RunProgress, rpc_timeout=QUERY_TIMEOUT)
        except Exception as err:  # noqa: BLE001 - a missing worker must not break reads
            log.debug("progress query of %s failed: %s", handle.id, err)
        if description.status == WorkflowExecutionStatus.COMPLETED:
            # The result type goes with the handle (``result()`` takes none).
            typed = self.client.get_workflow_handle(handle.id, run_id=description.run_id, result_type=RunProgress)
            with contextlib.suppress(Exception):
                return await typed.result()
        return None

    async def run_input(self, handle: WorkflowHandle[Any, Any]) -> RunInput | None:
        """What the run was started with (first history event), or ``None`` if unreadable."""
        try:
            async for event in handle.fetch_history_events(page_size=1):
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                if not payloads:
                    return None
                values = await self.client.data_converter.decode(payloads, [RunInput])
                return values[0] if values and isinstance(values[0], RunInput) else None
        except Exception as err:  # noqa: BLE001
            log.debug("cannot read the input of %s: %s", handle.id, err)
        return None

    async def get(self, run_id: str) -> RunDetail:
        """A run with its status, inputs and job/step tree.

        A running step's agent and attempt come from its pending activity in the describe
        already made (the progress query only knows them once the step has a result).
        """
        handle, description = await self.describe(run_id)
        progress, started = await asyncio.gather(self.progress(handle, description), self.run_input(handle))
        if progress is not None and description.status == WorkflowExecutionStatus.RUNNING:
            _fill_running(progress, description)
        detail = _detail(run_id, description, progress, started)
        detail.rerun_of = started.rerun.of if started is not None and started.rerun is not None else None
        detail.check = started is not None and started.check
        # Only a finished run can be rerun (409 still_running): a running one, which clients poll,
        # has none, so it skips the visibility scan.
        if description.status != WorkflowExecutionStatus.RUNNING:
            detail.reruns = await reruns_of(self.client, run_id, description.start_time)
        if started is not None:
            detail.graph = await self.graphs.of((run_id, description.run_id), started)
        return detail

    async def list(
        self,
        *,
        statuses: list[str],
        name: str | None,
        page_size: int,
        token: PageToken,
        since: datetime | None = None,
        until: datetime | None = None,
        search: str | None = None,
    ) -> RunList:
        """One page of runs, newest first, optionally filtered by status, workflow name and start time.

        ``search`` keeps the runs whose name or id contains it, ignoring case (like ``name``, it is
        applied to each page Temporal returns: visibility has no substring match on memos).
        """
        needle = search.casefold() if search else None
        query = visibility_query(statuses) + _started_between(since, until)
        runs: list[RunSummary] = []
        temporal_token, skip = token.temporal, token.skip
        for _ in range(MAX_LIST_SCAN_PAGES):
            iterator = self.client.list_workflows(query, page_size=page_size, next_page_token=temporal_token)
            # Temporal's part of a page token is opaque to this server: a forged one fails there.
            forged = NOT_ISSUED if temporal_token is not None and temporal_token == token.temporal else None
            with temporal_errors(invalid=forged):
                await iterator.fetch_next_page()
            page = list(iterator.current_page or ())
            for index in range(skip, len(page)):
                execution = page[index]
                summary = await _summary(execution)
                if name is not None and summary.name != name:
                    continue
                if needle is not None and needle not in summary.name.casefold() and needle not in summary.id.casefold():
                    continue
                runs.append(summary)
                if len(runs) == page_size:
                    if index + 1 < len(page):
                        return RunList(
                            runs=runs, next_page_token=PageToken(temporal_token, index + 1).encode()
                        )
                    following = iterator.next_page_token
                    return RunList(
                        runs=runs, next_page_token=PageToken(following).encode() if following else None
                    )
            temporal_token, skip = iterator.next_page_token, 0
            if not temporal_token:
                return RunList(runs=runs, next_page_token=None)
        # Scanned enough for one request: hand back what was found and where to go on.
        return RunList(runs=runs, next_page_token=PageToken(temporal_token).encode())

    # -- cancelling --------------------------------------------------------------------------

    async def cancel(self, run_id: str) -> CancelAccepted:
        """Request cancellation (the run then compensates and ends ``cancelled``)."""
        handle, description = await self.describe(run_id)
        ref = CancelAccepted(id=run_id, run_id=description.run_id, status_url=status_url(run_id))
        if description.status != WorkflowExecutionStatus.RUNNING:
            status = api_status(description.status)
            raise APIError(
                409,
                "not_running",
                f"run {run_id!r} already finished ({status})",
                extra=ref.model_dump(exclude={"message"}),
            )
        with temporal_errors(run_id):
            await handle.cancel()
        return ref

    # -- logs --------------------------------------------------------------------------------

    async def logs(self, run_id: str) -> LogsResponse:
        """Every log entry the run holds now."""
        handle, description = await self.describe(run_id)
        progress = await self.progress(handle, description)
        entries = snapshot_entries(progress) if progress else []
        entries += _heartbeat_entries(LogTracker(), await self._heartbeats(description), progress)
        status = _status(description, progress)
        return LogsResponse(id=run_id, status=status, entries=entries)

    async def follow(
        self,
        run_id: str,
        *,
        poll: float,
        client: str = "",
        disconnected: Callable[[], Awaitable[bool]] | None = None,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """``(event, data)`` pairs: ``log``/``step`` entries as they appear, then ``end``.

        The stream limits are checked (429) and the first describe happens before the first
        yield, so an unknown id raises 404 while the response can still be an error. A stream
        that outlives :attr:`StreamLimits.max_seconds` ends with an ``error`` event.
        """
        lease = self.streams.acquire(client)
        try:
            handle, description = await self.describe(run_id)
        except BaseException:
            lease.release()
            raise
        tracker = LogTracker()

        async def stream() -> AsyncIterator[tuple[str, dict[str, Any]]]:
            nonlocal description
            try:
                while True:
                    progress = await self.progress(handle, description)
                    entries = tracker.from_progress(progress) if progress else []
                    entries += _heartbeat_entries(tracker, await self._heartbeats(description), progress)
                    for entry in entries:
                        yield entry.kind, entry.model_dump(mode="json")
                    if description.status != WorkflowExecutionStatus.RUNNING:
                        status = _status(description, progress)
                        error = progress.error if progress else None
                        yield "end", {"id": run_id, "status": status, "error": error}
                        return
                    if lease.expired():
                        yield "error", stream_expired(self.streams.max_seconds).body()
                        return
                    await asyncio.sleep(poll)
                    if disconnected is not None and await disconnected():
                        return
                    try:
                        with temporal_errors(run_id):
                            description = await handle.describe()
                    except APIError as err:
                        yield "error", err.body()
                        return
            finally:
                lease.release()

        return stream()

    async def _heartbeats(self, description: WorkflowExecutionDescription) -> dict[str, dict[str, Any]]:
        """Heartbeat details of the run's pending step activities, by activity id."""
        found: dict[str, dict[str, Any]] = {}
        for activity in description.raw_description.pending_activities:
            if not activity.heartbeat_details.payloads:
                continue
            try:
                values = await self.client.data_converter.decode(activity.heartbeat_details.payloads)
            except Exception as err:  # noqa: BLE001 - foreign or corrupt details are not logs
                log.debug("undecodable heartbeat of %s: %s", activity.activity_id, err)
                continue
            if values and isinstance(values[-1], dict):
                found[activity.activity_id] = values[-1]
        return found


AGENT_IDENTITY_PREFIX = "waterflow-agent/"


def agent_of(identity: str) -> str:
    """The agent name in a worker identity ``waterflow-agent/<name>@host:pid`` ("" for other workers)."""
    if not identity.startswith(AGENT_IDENTITY_PREFIX):
        return ""
    return identity[len(AGENT_IDENTITY_PREFIX) :].rpartition("@")[0]


def _fill_running(progress: RunProgress, description: WorkflowExecutionDescription) -> None:
    """Give running steps that do not know them yet the agent and attempt of their pending activity."""
    pending = {activity.activity_id: activity for activity in description.raw_description.pending_activities}
    if not pending:
        return
    for path, step in progress_steps(progress):
        if step.status != "running":
            continue
        # A compensation moved to its group's queue runs as ``<path>@<group>``.
        activity = pending.get(path) or next(
            (found for key, found in pending.items() if key.rpartition("@")[0] == path), None
        )
        if activity is None:
            continue
        if not step.agent:
            step.agent = agent_of(activity.last_worker_identity)
        if not step.attempt:
            step.attempt = activity.attempt


def _visibility_time(moment: datetime) -> str:
    """A timestamp as Temporal's visibility queries take it (UTC, RFC 3339)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _started_between(since: datetime | None, until: datetime | None) -> str:
    """The visibility clause for runs started in ``[since, until)`` ("" when unbounded)."""
    clause = ""
    if since is not None:
        clause += f" AND StartTime >= '{_visibility_time(since)}'"
    if until is not None:
        clause += f" AND StartTime < '{_visibility_time(until)}'"
    return clause


def _heartbeat_entries(
    tracker: LogTracker, heartbeats: dict[str, dict[str, Any]], progress: RunProgress | None
) -> list[LogEntry]:
    known = {path for path, _ in progress_steps(progress)} if progress else set()
    entries: list[LogEntry] = []
    for activity_id, details in heartbeats.items():
        # A compensation that moved to its group's queue runs as ``<path>@<group>``: its lines
        # belong to the compensation's path, as its final lines do.
        path = activity_id
        if activity_id not in known and activity_id.rpartition("@")[0] in known:
            path = activity_id.rpartition("@")[0]
        entries += tracker.from_heartbeat(path, details)
    return entries


def _status(description: WorkflowExecutionDescription, progress: RunProgress | None) -> Any:
    """The API status: Temporal's when it is definite, the interpreter's own reading otherwise."""
    if description.status == WorkflowExecutionStatus.RUNNING:
        return "running"
    if progress is not None and progress.status != "running":
        return progress.status
    return api_status(description.status)


def _detail(
    run_id: str,
    description: WorkflowExecutionDescription,
    progress: RunProgress | None,
    started: RunInput | None,
) -> RunDetail:
    name = progress.name if progress else ""
    if not name and started is not None:
        name = started.name
    return RunDetail(
        id=run_id,
        run_id=description.run_id,
        name=name,
        status=_status(description, progress),
        error=progress.error if progress else None,
        started_at=(progress.started_at if progress and progress.started_at else description.start_time),
        finished_at=(progress.finished_at if progress and progress.finished_at else description.close_time),
        inputs=started.inputs if started else {},
        jobs=progress.jobs if progress else [],
        compensations=progress.compensations if progress else [],
        matrix=job_matrices(progress) if progress else [],
        waiting_for_lock=progress.waiting_for_lock if progress else None,
        locks=progress.locks if progress else [],
        temporal_status=temporal_status_name(description.status),
    )


async def _summary(execution: WorkflowExecution) -> RunSummary:
    name, check = "", False
    with contextlib.suppress(Exception):
        memo = await execution.memo()
        name = str(memo.get(NAME_MEMO, "") or "")
        check = memo.get(CHECK_MEMO) is True
    return RunSummary(
        id=execution.id,
        run_id=execution.run_id,
        name=name,
        status=api_status(execution.status),
        started_at=execution.start_time,
        finished_at=execution.close_time,
        check=check,
    )


__all__ = [
    "RunService",
    "agent_of",
    "check_run_id",
    "new_run_id",
    "status_url",
]
