"""``POST /v1/workflows/{id}/rerun``: a new run of a finished run that skips what succeeded (ADR 0039).

The rerun takes the original's snapshot (workflow and typed inputs, from its first history
event) and its final progress, and starts with :func:`~waterflow_core.rerun.plan_rerun`'s input
and the memo ``rerun_of``. Its ``id`` is an idempotency key, as for submissions (ADR 0009).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blacksheep import Application, Request, Response
from blacksheep.server.openapi.common import ContentInfo, ResponseInfo
from pydantic import BaseModel, Field, ValidationError
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError

from waterflow_core.errors import ErrorItem
from waterflow_core.rerun import RERUN_MEMO, RerunError, plan_rerun

from .bodies import read_json_object
from .models import ErrorBody, RunRef
from .openapi import WaterflowOpenAPI, error_responses
from .problems import APIError, bad_request, model_response
from .runs import RunService, check_run_id, new_run_id, status_url, temporal_errors
from .status import api_status

if TYPE_CHECKING:
    from .app import AppState

RERUN_PATH = "/v1/workflows/{id}/rerun"


class RerunRequest(BaseModel, extra="forbid"):
    """The body of ``POST /v1/workflows/{id}/rerun`` (every field optional)."""

    failed_only: bool = Field(
        default=False, description="Skip every job and fan-out instance (server) that succeeded in the original."
    )
    from_step: str | None = Field(
        default=None,
        max_length=400,
        description="JOB/STEP: in that job, skip the steps before STEP that succeeded, and the jobs it needs that did.",
    )
    id: str | None = Field(default=None, description="The rerun's id: an idempotency key, as for submissions.")


def register_rerun_routes(app: Application, docs: WaterflowOpenAPI, state: AppState) -> None:
    """Add the rerun endpoint to ``app``."""

    @docs(
        summary="Rerun a finished run",
        tags=["runs"],
        responses={
            201: ResponseInfo("The rerun was started.", content=[ContentInfo(type=RunRef)]),
            200: ResponseInfo(
                "The id named a rerun of this run that exists; nothing new was started.",
                content=[ContentInfo(type=RunRef)],
            ),
            409: ResponseInfo(
                "The run is still running, or the id names a run that is running or is not a rerun of it.",
                content=[ContentInfo(type=ErrorBody)],
            ),
            422: ResponseInfo(
                "from_step names no step of the run (errors names the field).", content=[ContentInfo(type=ErrorBody)]
            ),
            **error_responses(400, 404, 413, 415, 503),
        },
    )
    async def rerun_run(request: Request, id: str) -> Response:
        """Start a new run of run ``id``'s workflow and inputs that skips what succeeded in it.

        ``failed_only`` skips the jobs and servers that succeeded; ``from_step`` (``job/step``)
        resumes that job at that step. Skipped steps are reported ``skipped`` with
        ``succeeded_in`` and keep their recorded outputs; the rerun never compensates them.
        """
        body = await _read_request(request, state.settings.max_body_bytes)
        ref = await start_rerun(state.runs, id, body)
        if not ref.created:
            return model_response(200, ref)
        return model_response(201, ref, [(b"Location", ref.status_url.encode())])

    app.router.add_post(RERUN_PATH, rerun_run)


async def start_rerun(runs: RunService, run_id: str, body: RerunRequest) -> RunRef:
    """Start the rerun (``created=True``), or return the rerun ``body.id`` already names."""
    if body.id is not None:
        check_run_id(body.id)
        existing = await _existing_rerun(runs, body.id, run_id)
        if existing is not None:
            return existing
    handle, description = await runs.describe(run_id)
    if description.status == WorkflowExecutionStatus.RUNNING:
        raise APIError(409, "still_running", f"run {run_id!r} is still running: rerun it once it has finished")
    started = await runs.run_input(handle)
    if started is None:
        raise APIError(409, "not_rerunnable", f"what run {run_id!r} was started with cannot be read")
    progress = await runs.progress(handle, description)
    if progress is None:
        raise APIError(
            503,
            "progress_unavailable",
            f"the progress of run {run_id!r} cannot be read now (is the interpreter worker up?)",
        )
    try:
        rerun = plan_rerun(run_id, started, progress, failed_only=body.failed_only, from_step=body.from_step)
    except RerunError as exc:
        if exc.field != "from_step":
            raise APIError(409, "not_rerunnable", str(exc)) from None
        item = ErrorItem(line=0, column=0, path=exc.field, message=str(exc))
        raise APIError(422, "invalid_rerun", str(exc), [item]) from None
    new_id = body.id or new_run_id(started.name)
    from waterflow_core.interpreter import start_run

    try:
        with temporal_errors():
            created = await start_run(
                runs.client, rerun, workflow_id=new_id, memo={RERUN_MEMO: run_id}, task_queue=runs.task_queue
            )
    except WorkflowAlreadyStartedError:
        existing = await _existing_rerun(runs, new_id, run_id)
        if existing is not None:
            return existing
        raise APIError(409, "conflict", f"a run with id {new_id!r} already exists") from None
    return RunRef(
        id=new_id, run_id=created.result_run_id or created.run_id or "", status_url=status_url(new_id), created=True
    )


async def _existing_rerun(runs: RunService, new_id: str, run_id: str) -> RunRef | None:
    """The rerun of ``run_id`` that ``new_id`` names (None if the id is free); 409 if it is another run."""
    try:
        handle, description = await runs.describe(new_id)
    except APIError as err:
        if err.status == 404:
            return None
        raise
    started = await runs.run_input(handle)
    if started is None or started.rerun is None or started.rerun.of != run_id:
        raise APIError(409, "conflict", f"id {new_id!r} is taken by a run that is not a rerun of {run_id!r}")
    ref = RunRef(id=new_id, run_id=description.run_id, status_url=status_url(new_id), created=False)
    if description.status == WorkflowExecutionStatus.RUNNING:
        status = api_status(description.status)
        raise APIError(409, "conflict", f"the rerun {new_id!r} is {status}", extra=ref.model_dump(exclude={"created"}))
    return ref


async def _read_request(request: Request, limit: int) -> RerunRequest:
    value = await read_json_object(request, limit, '{"failed_only": true, "from_step": "job/step"}')
    if value is None:
        return RerunRequest()
    try:
        return RerunRequest.model_validate(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise bad_request(f"{where}: {first['msg']} (allowed: failed_only, from_step, id)") from None
