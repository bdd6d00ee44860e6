"""Schedules: runs started by Temporal Schedules on a cron or interval (ADR 0037).

A schedule is a Temporal Schedule whose action starts ``WaterflowRun`` with a :class:`RunInput`
planned once, when the schedule is created: the workflow is validated and its inputs typed then,
so every fire runs the same snapshot. Each run's workflow id is the schedule id with the
scheduled time appended by Temporal (``nightly-2026-11-30T02:00:00Z``), and its memo carries the
workflow name (so it lists like a submitted run) and the schedule id. Nothing is kept in this
server: the schedule, its state and its history live in Temporal and survive restarts.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from blacksheep import Application, Request, Response
from blacksheep.server.openapi.common import ContentInfo, ResponseInfo
from pydantic import BaseModel, Field
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleListDescription,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from waterflow_core.runs import NAME_MEMO, WORKFLOW_TYPE, RunInput

from .bodies import read_json_object
from .models import ErrorBody
from .openapi import WaterflowOpenAPI, error_responses
from .problems import APIError, bad_request, model_response, not_found, temporal_unavailable
from .runs import RESERVED_PREFIXES, RunService, new_run_id, status_url
from .schedule_spec import OVERLAP_NAMES, OVERLAP_POLICIES, ScheduleRequest

if TYPE_CHECKING:
    from .app import AppState

SCHEDULE_MEMO = "waterflow-schedule"
"""Memo key, on a schedule and on each run it starts: what Waterflow knows of the schedule."""
SCHEDULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,149}$")
"""Shorter than a run id: Temporal appends the scheduled time (21 characters) to make each run's id."""
CLEANUP_GRACE = timedelta(hours=1)
"""As for submitted runs: a run's own ``timeout`` plus time to compensate."""
MAX_LISTED = 1000


class ScheduledRun(BaseModel):
    """A run a schedule started."""

    id: str
    scheduled_at: datetime
    started_at: datetime
    status_url: str


class ScheduleInfo(BaseModel):
    """A schedule: when it fires, what it runs, and what it started recently."""

    id: str
    name: str = Field(description="The workflow's name.")
    cron: list[str] = Field(default_factory=list, description="5-field cron expressions, as given.")
    interval_seconds: float | None = None
    timezone: str = "UTC"
    overlap: str = Field(description="skip, buffer-one, buffer-all, cancel-other or allow-all.")
    paused: bool = False
    note: str = ""
    next_runs: list[datetime] = Field(default_factory=list, description="The next fire times Temporal computed.")
    recent_runs: list[ScheduledRun] = Field(default_factory=list)
    runs_started: int | None = Field(default=None, description="Runs started so far (GET /v1/schedules/{id} only).")
    inputs: dict[str, Any] | None = Field(default=None, description="The typed inputs (GET /v1/schedules/{id} only).")
    created_at: datetime | None = None
    url: str


class ScheduleList(BaseModel):
    """``GET /v1/schedules``: every Waterflow schedule (Temporal's visibility may lag a second behind)."""

    schedules: list[ScheduleInfo]


class ScheduleTriggered(BaseModel):
    """The schedule was asked to start a run now (its overlap policy still applies)."""

    id: str
    url: str


def schedule_url(schedule_id: str) -> str:
    """Where a schedule lives in this API."""
    return f"/v1/schedules/{schedule_id}"


def check_schedule_id(schedule_id: str) -> None:
    """Refuse ids that are not URL-friendly, or too long to leave room for the time Temporal appends."""
    if not SCHEDULE_ID_RE.match(schedule_id):
        raise APIError(
            400,
            "invalid_id",
            "schedule id must be 1-150 characters: letters, digits and . _ ~ - (starting with a letter or digit)",
        )
    if schedule_id.startswith(RESERVED_PREFIXES):
        raise APIError(400, "invalid_id", f"ids starting with {RESERVED_PREFIXES[0]!r} are reserved")


@contextlib.contextmanager
def schedule_errors(schedule_id: str) -> Iterator[None]:
    """Temporal's refusals as API errors: 404 for an unknown schedule, 503 when unreachable, else 502."""
    try:
        yield
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise not_found(f"no schedule with id {schedule_id!r}") from None
        # CANCELLED: the SDK's own rpc_timeout ran out ("Timeout expired"): Temporal did not answer.
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise temporal_unavailable(err.message) from None
        raise APIError(502, "temporal_error", f"Temporal refused the request: {err.message}") from None


class ScheduleService:
    """Waterflow schedules over one Temporal client; runs go to ``task_queue``."""

    def __init__(self, client: Client, runs: RunService, task_queue: str) -> None:
        self.client = client
        self.runs = runs
        self.task_queue = task_queue

    async def create(self, request: ScheduleRequest) -> ScheduleInfo:
        """Validate and plan the run once, then create the schedule (409 if the id is taken)."""
        if request.id is not None:
            check_schedule_id(request.id)
        workflow = await self.runs.validate(request.workflow)
        run = self.runs.plan(workflow, request.inputs, request.workflow)
        schedule_id = request.id or new_run_id(workflow.name)
        action = ScheduleActionStartWorkflow(
            WORKFLOW_TYPE,
            run,
            id=schedule_id,
            task_queue=self.task_queue,
            execution_timeout=timedelta(seconds=run.timeout) + CLEANUP_GRACE if run.timeout else None,
            memo={NAME_MEMO: run.name, SCHEDULE_MEMO: schedule_id},
            static_summary=run.name[:200],
        )
        spec = ScheduleSpec(
            cron_expressions=request.cron,
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=request.interval))] if request.interval else [],
            time_zone_name=request.timezone,
        )
        schedule = Schedule(
            action=action,
            spec=spec,
            policy=SchedulePolicy(overlap=OVERLAP_POLICIES[request.overlap]),
            state=ScheduleState(note=request.note, paused=request.paused),
        )
        memo = {SCHEDULE_MEMO: {"name": run.name, "cron": request.cron, "overlap": request.overlap}}
        try:
            with schedule_errors(schedule_id):
                await self.client.create_schedule(schedule_id, schedule, memo=memo)
        except ScheduleAlreadyRunningError:
            raise APIError(409, "conflict", f"a schedule with id {schedule_id!r} already exists") from None
        return await self.get(schedule_id)

    async def _handle(self, schedule_id: str) -> tuple[ScheduleHandle, ScheduleDescription]:
        """The handle and description of a Waterflow schedule; 404 for unknown ids and others' schedules."""
        if not SCHEDULE_ID_RE.match(schedule_id):
            raise not_found(f"no schedule with id {schedule_id!r}")
        handle = self.client.get_schedule_handle(schedule_id)
        with schedule_errors(schedule_id):
            description = await handle.describe()
        action = description.schedule.action
        if not isinstance(action, ScheduleActionStartWorkflow) or action.workflow != WORKFLOW_TYPE:
            raise not_found(f"no schedule with id {schedule_id!r}")
        return handle, description

    async def get(self, schedule_id: str) -> ScheduleInfo:
        """A schedule with its next fire times, recent runs, run count and typed inputs."""
        _, description = await self._handle(schedule_id)
        return await self._info(description)

    async def _info(self, description: ScheduleDescription) -> ScheduleInfo:
        memo = await _memo(description)
        schedule, info = description.schedule, description.info
        inputs: dict[str, Any] | None = None
        action = schedule.action
        if isinstance(action, ScheduleActionStartWorkflow) and action.args:
            with contextlib.suppress(Exception):  # an unreadable snapshot still shows the schedule
                decoded = await self.client.data_converter.decode(action.args, [RunInput])
                if decoded and isinstance(decoded[0], RunInput):
                    inputs = decoded[0].inputs
        return ScheduleInfo(
            id=description.id,
            name=str(memo.get("name", "")),
            cron=list(memo.get("cron") or []),
            interval_seconds=_interval(schedule.spec),
            timezone=schedule.spec.time_zone_name or "UTC",
            overlap=OVERLAP_NAMES.get(schedule.policy.overlap, schedule.policy.overlap.name.lower()),
            paused=schedule.state.paused,
            note=schedule.state.note or "",
            next_runs=list(info.next_action_times),
            recent_runs=_recent(info.recent_actions),
            runs_started=info.num_actions,
            inputs=inputs,
            created_at=info.created_at,
            url=schedule_url(description.id),
        )

    async def list(self) -> ScheduleList:
        """Every Waterflow schedule in the namespace (others' schedules are left out)."""
        found: list[ScheduleInfo] = []
        with schedule_errors(""):
            async for entry in await self.client.list_schedules(page_size=100):
                info = await _listed(entry)
                if info is not None:
                    found.append(info)
                if len(found) >= MAX_LISTED:
                    break
        found.sort(key=lambda item: item.id)
        return ScheduleList(schedules=found)

    async def pause(self, schedule_id: str, paused: bool) -> ScheduleInfo:
        """Pause or unpause; the note says it was done through the API."""
        handle, _ = await self._handle(schedule_id)
        with schedule_errors(schedule_id):
            if paused:
                await handle.pause(note="paused through the Waterflow API")
            else:
                await handle.unpause(note="unpaused through the Waterflow API")
        return await self.get(schedule_id)

    async def trigger(self, schedule_id: str) -> ScheduleTriggered:
        """Start a run now, under the schedule's overlap policy."""
        handle, _ = await self._handle(schedule_id)
        with schedule_errors(schedule_id):
            await handle.trigger()
        return ScheduleTriggered(id=schedule_id, url=schedule_url(schedule_id))

    async def delete(self, schedule_id: str) -> None:
        """Delete the schedule; runs it started are left alone."""
        handle, _ = await self._handle(schedule_id)
        with schedule_errors(schedule_id):
            await handle.delete()


async def _memo(description: ScheduleDescription | ScheduleListDescription) -> dict[str, Any]:
    with contextlib.suppress(Exception):
        value = (await description.memo()).get(SCHEDULE_MEMO)
        if isinstance(value, dict):
            return value
    return {}


def _interval(spec: ScheduleSpec) -> float | None:
    return spec.intervals[0].every.total_seconds() if spec.intervals else None


def _recent(actions: Any) -> list[ScheduledRun]:
    runs: list[ScheduledRun] = []
    for result in actions:
        workflow_id = getattr(result.action, "workflow_id", None)
        if workflow_id:
            runs.append(
                ScheduledRun(
                    id=workflow_id,
                    scheduled_at=result.scheduled_at,
                    started_at=result.started_at,
                    status_url=status_url(workflow_id),
                )
            )
    return runs


async def _listed(entry: ScheduleListDescription) -> ScheduleInfo | None:
    """A listed schedule, or ``None`` when it is not Waterflow's."""
    if entry.schedule is None or getattr(entry.schedule.action, "workflow", None) != WORKFLOW_TYPE:
        return None
    memo = await _memo(entry)
    if not memo:
        return None
    spec, state = entry.schedule.spec, entry.schedule.state
    return ScheduleInfo(
        id=entry.id,
        name=str(memo.get("name", "")),
        cron=list(memo.get("cron") or []),
        interval_seconds=_interval(spec),
        timezone=spec.time_zone_name or "UTC",
        overlap=str(memo.get("overlap", "skip")),
        paused=state.paused,
        note=state.note or "",
        next_runs=list(entry.info.next_action_times) if entry.info else [],
        recent_runs=_recent(entry.info.recent_actions) if entry.info else [],
        url=schedule_url(entry.id),
    )


async def _read_request(request: Request, limit: int) -> ScheduleRequest:
    document = await read_json_object(request, limit, '{"workflow": "<yaml>", "cron": "..."}')
    if document is None:
        raise bad_request('send a JSON object: {"workflow": "<yaml>", "cron": "*/5 * * * *", ...}')
    return ScheduleRequest(document)


def register_schedule_routes(app: Application, docs: WaterflowOpenAPI, state: AppState) -> None:
    """Add the schedule endpoints to ``app``."""

    def service() -> ScheduleService:
        return ScheduleService(state.client, state.runs, state.settings.task_queue)

    def ok(model: type, text: str) -> ResponseInfo:
        return ResponseInfo(text, content=[ContentInfo(type=model)])

    unknown: dict[int | str, str | ResponseInfo] = {
        404: ResponseInfo("No Waterflow schedule with this id.", content=[ContentInfo(type=ErrorBody)])
    }

    @docs(
        summary="Create a schedule",
        tags=["schedules"],
        responses={
            201: ok(ScheduleInfo, "The schedule was created."),
            **error_responses(400, 413, 415, 503),
            409: ResponseInfo("A schedule with this id exists.", content=[ContentInfo(type=ErrorBody)]),
            422: ResponseInfo(
                "Invalid workflow or inputs, or a bad cron, interval, timezone or overlap (errors names the field).",
                content=[ContentInfo(type=ErrorBody)],
            ),
        },
    )
    async def create_schedule(request: Request) -> Response:
        """Validate the workflow and its inputs once, and create a Temporal Schedule that runs them.

        The JSON body: ``workflow`` (YAML text), ``inputs``, ``id`` (default: from the workflow's
        name), ``cron`` (a 5-field expression or a list), ``interval`` (``30s``, ``5m`` or
        seconds), ``timezone`` (IANA, default UTC), ``overlap`` (``skip`` — the default —,
        ``buffer-one``, ``buffer-all``, ``cancel-other``, ``allow-all``), ``paused`` and ``note``.
        At least one of ``cron`` and ``interval``. Each run's id is the schedule id with the
        scheduled time appended.
        """
        body = await _read_request(request, state.settings.max_body_bytes)
        created = await service().create(body)
        return model_response(201, created, [(b"Location", created.url.encode())])

    @docs(summary="List schedules", tags=["schedules"], responses={200: ok(ScheduleList, "Every Waterflow schedule.")})
    async def list_schedules() -> Response:
        """Every Waterflow schedule with its next fire times and recent runs, by id."""
        return model_response(200, await service().list())

    @docs(summary="Get a schedule", tags=["schedules"], responses={200: ok(ScheduleInfo, "The schedule."), **unknown})
    async def get_schedule(id: str) -> Response:
        """The schedule, its next fire times, recent runs, run count and typed inputs."""
        return model_response(200, await service().get(id))

    @docs(summary="Pause a schedule", tags=["schedules"], responses={200: ok(ScheduleInfo, "Paused."), **unknown})
    async def pause_schedule(id: str) -> Response:
        """Stop firing until unpaused (runs already started go on)."""
        return model_response(200, await service().pause(id, True))

    @docs(summary="Unpause a schedule", tags=["schedules"], responses={200: ok(ScheduleInfo, "Unpaused."), **unknown})
    async def unpause_schedule(id: str) -> Response:
        """Fire again at the next matching time (missed times are not made up)."""
        return model_response(200, await service().pause(id, False))

    @docs(
        summary="Run a schedule now",
        tags=["schedules"],
        responses={202: ok(ScheduleTriggered, "A run was requested."), **unknown},
    )
    async def trigger_schedule(id: str) -> Response:
        """Start a run now, as if the schedule fired (its overlap policy applies; paused or not)."""
        return model_response(202, await service().trigger(id))

    @docs(summary="Delete a schedule", tags=["schedules"], responses={204: ResponseInfo("Deleted."), **unknown})
    async def delete_schedule(id: str) -> Response:
        """Delete the schedule. Runs it started are not touched."""
        await service().delete(id)
        return Response(204)

    router = app.router
    router.add_post("/v1/schedules", create_schedule)
    router.add_get("/v1/schedules", list_schedules)
    router.add_get("/v1/schedules/{id}", get_schedule)
    router.add_delete("/v1/schedules/{id}", delete_schedule)
    router.add_post("/v1/schedules/{id}/pause", pause_schedule)
    router.add_post("/v1/schedules/{id}/unpause", unpause_schedule)
    router.add_post("/v1/schedules/{id}/trigger", trigger_schedule)


__all__ = ["ScheduleInfo", "ScheduleList", "ScheduleService", "ScheduleTriggered", "register_schedule_routes"]
