"""The REST endpoints. Each handler is thin: parse, call :class:`RunService`, answer JSON."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

from blacksheep import Application, Request, Response
from blacksheep.contents import Content
from blacksheep.server.openapi.common import ContentInfo, ResponseInfo
from blacksheep.server.sse import ServerSentEvent, ServerSentEventsResponse

from waterflow_core.agent_registry import list_agents

from .bodies import read_submission
from .hooks import register_hook_routes
from .models import (
    AgentEntry,
    AgentList,
    CancelAccepted,
    DeclaredInput,
    Health,
    LogsResponse,
    NodeList,
    RunDetail,
    RunList,
    RunRef,
    RunSnapshot,
    ValidateResult,
)
from .openapi import WaterflowOpenAPI, error_responses
from .pagination import PageToken, parse_timestamp
from .plan import register_plan_routes
from .problems import APIError, bad_request, model_response
from .rerun import register_rerun_routes
from .schedules import register_schedule_routes
from .signals import register_signal_routes
from .status import parse_status_filter

if TYPE_CHECKING:
    from .app import AppState

KEEPALIVE_SECONDS = 15.0
PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"
MAX_PAGE_SIZE = 500
MAX_SEARCH_LENGTH = 200


def _ok(model_type: type, description: str) -> ResponseInfo:
    return ResponseInfo(description, content=[ContentInfo(type=model_type)])


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def register_routes(app: Application, docs: WaterflowOpenAPI, state: AppState) -> None:
    """Add every endpoint of the API to ``app``."""
    router = app.router

    # -- runs --------------------------------------------------------------------------------

    @docs(
        summary="Submit a workflow run",
        tags=["runs"],
        responses={
            201: _ok(RunRef, "The run was started."),
            200: _ok(RunRef, "The id named a finished run; nothing new was started."),
            **error_responses(400, 409, 413, 415, 422, 503),
        },
    )
    async def submit_run(request: Request) -> Response:
        """Validate the workflow and its inputs, then start a run.

        The body is the workflow YAML (``Content-Type: application/yaml`` or any ``text/*``; pass
        ``id`` and ``inputs`` — a JSON object — in the query string) or a JSON envelope
        ``{"workflow": "<yaml>", "inputs": {...}, "id": "..."}``. ``id`` is the run id and an
        idempotency key: an id that is running answers 409, an id whose run finished answers 200
        with that run, and never starts a second one.
        """
        try:
            submission = await read_submission(request, state.settings.max_body_bytes)
            ref = await state.runs.submit(submission)
        except APIError as err:
            state.metrics.submissions_rejected.labels(err.code).inc()
            raise
        if not ref.created:
            return model_response(200, ref)
        state.metrics.runs_submitted.inc()
        return model_response(201, ref, [(b"Location", ref.status_url.encode())])

    @docs(
        summary="List runs",
        tags=["runs"],
        responses={200: _ok(RunList, "One page of runs, newest first."), **error_responses(400, 503)},
    )
    async def list_runs(
        status: str | None = None,
        name: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
        since: str | None = None,
        until: str | None = None,
        q: str | None = None,
    ) -> Response:
        """Runs from Temporal visibility, newest first.

        ``status`` filters by one or more comma-separated statuses (running, succeeded, failed,
        cancelled, timed_out); ``name`` by workflow name; ``q`` keeps runs whose name or id
        contains it (ignoring case); ``since`` and ``until`` (RFC 3339 timestamps or dates, UTC
        without an offset) by start time, ``since`` inclusive. A page may hold fewer than
        ``page_size`` runs when filtering by name or ``q``; only a null ``next_page_token`` means
        the end.
        """
        try:
            statuses = parse_status_filter(status)
            token = PageToken.decode(page_token)
            started_since = parse_timestamp(since, "since")
            started_until = parse_timestamp(until, "until")
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise bad_request(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if q is not None and len(q) > MAX_SEARCH_LENGTH:
            raise bad_request(f"q must be at most {MAX_SEARCH_LENGTH} characters")
        page = await state.runs.list(
            statuses=statuses,
            name=name or None,
            page_size=page_size,
            token=token,
            since=started_since,
            until=started_until,
            search=(q or "").strip() or None,
        )
        return model_response(200, page)

    @docs(
        summary="Get a run",
        tags=["runs"],
        responses={200: _ok(RunDetail, "The run and its job/step tree."), **error_responses(404, 503)},
    )
    async def get_run(id: str) -> Response:
        """Status, timestamps, inputs and the job/step tree (with step outputs and errors)."""
        return model_response(200, await state.runs.get(id))

    @docs(
        summary="What a run was started with",
        tags=["runs"],
        responses={
            200: _ok(RunSnapshot, "The workflow text, the validated workflow and the typed inputs."),
            **error_responses(404, 409, 503),
        },
    )
    async def get_snapshot(id: str) -> Response:
        """The snapshot the run was planned from at submit (its first history event): it never
        changes under the run, whatever happens to the file it came from."""
        handle, _ = await state.runs.describe(id)
        started = await state.runs.run_input(handle)
        if started is None:
            raise APIError(409, "no_snapshot", f"what run {id!r} was started with cannot be read")
        snapshot = RunSnapshot(
            id=id,
            name=started.name,
            source=started.source,
            workflow=started.workflow,
            inputs=started.inputs,
            limit=started.limit,
        )
        return model_response(200, snapshot)

    @docs(
        summary="Cancel a run",
        tags=["runs"],
        responses={
            202: _ok(CancelAccepted, "Cancellation was requested."),
            **error_responses(404, 409, 503),
        },
    )
    async def cancel_run(id: str) -> Response:
        """Ask the run to stop: running steps are cancelled, completed ones compensated."""
        return model_response(202, await state.runs.cancel(id))

    @docs(
        summary="Read or follow a run's logs",
        tags=["runs"],
        responses={
            200: ResponseInfo(
                "JSON entries, or with follow=true a text/event-stream of `step` and `log` events "
                "ending with an `end` event that carries the final status.",
                content=[
                    ContentInfo(type=LogsResponse),
                    ContentInfo(type=str, content_type="text/event-stream"),
                ],
            ),
            **error_responses(404, 429, 503),
        },
    )
    async def run_logs(request: Request, id: str, follow: str | None = None) -> Response:
        """Step events and output lines. ``follow=true`` streams server-sent events until the run closes."""
        if not _truthy(follow):
            return model_response(200, await state.runs.logs(id))
        stream = await state.runs.follow(
            id,
            poll=state.settings.follow_poll_seconds,
            client=request.client_ip,
            disconnected=request.is_disconnected,
        )

        async def events() -> AsyncIterator[ServerSentEvent]:
            async for event, data in _with_keepalive(stream):
                if event == "keepalive":
                    yield ServerSentEvent(None, comment="keep-alive")
                else:
                    yield ServerSentEvent(data, event=event)

        headers = [(b"Cache-Control", b"no-cache"), (b"X-Accel-Buffering", b"no")]
        return ServerSentEventsResponse(events, headers=headers)

    # -- workflows, nodes, agents ------------------------------------------------------------

    @docs(
        summary="Validate a workflow",
        tags=["workflows"],
        responses={
            200: _ok(ValidateResult, "The workflow is valid."),
            **error_responses(400, 413, 415, 422, 503),
        },
    )
    async def validate(request: Request) -> Response:
        """Check a workflow (and, when given, its inputs) exactly as a submission would, without running it."""
        submission = await read_submission(request, state.settings.max_body_bytes)
        workflow = await state.runs.validate(submission.workflow)
        if submission.inputs_given:
            state.runs.check_inputs(workflow, submission.inputs)
        unchecked = await state.nodes.unchecked(workflow)
        result = ValidateResult(
            name=workflow.name, jobs=list(workflow.jobs), unchecked=unchecked, inputs=DeclaredInput.of(workflow)
        )
        return model_response(200, result)

    @docs(summary="List node types", tags=["nodes"], responses={200: _ok(NodeList, "Every known node type.")})
    async def nodes() -> Response:
        """Node types installed on the server (with input/output JSON Schemas) or announced by live
        agents, with the agents and groups that provide each."""
        found = await state.nodes.catalog()
        return model_response(200, NodeList(nodes=found))

    @docs(summary="List agents", tags=["agents"], responses={200: _ok(AgentList, "Registered agents.")})
    async def agents(request: Request) -> Response:
        """Agents from the registry in Temporal; ``all=true`` includes ones that stopped heartbeating."""
        include_stale = _truthy(next(iter(request.query.get("all") or ()), None))
        try:
            found = await list_agents(state.client, include_stale=include_stale)
        except Exception as exc:  # noqa: BLE001 - answer with what is available
            body = AgentList(agents=[], complete=False, message=f"agent registry unavailable: {exc}")
            return model_response(200, body)
        entries = [
            AgentEntry(
                name=agent.name,
                groups=agent.groups,
                alive=agent.is_alive(),
                last_seen=agent.last_seen,
                started_at=agent.started_at,
                nodes=[f"{node.type}@{node.version}" for node in agent.nodes],
                facts=agent.facts,
            )
            for agent in found
        ]
        return model_response(200, AgentList(agents=entries))

    # -- operations --------------------------------------------------------------------------

    @docs(
        summary="Health",
        tags=["operations"],
        responses={
            200: _ok(Health, "Temporal is reachable."),
            503: _ok(Health, "Temporal is not reachable."),
        },
    )
    async def healthz() -> Response:
        """Whether Temporal answers and the interpreter worker runs."""
        try:
            reachable = await state.client.service_client.check_health(timeout=timedelta(seconds=3))
        except Exception:  # noqa: BLE001
            reachable = False
        worker = state.worker.state
        healthy = reachable and worker != "stopped"
        body = Health(
            status="ok" if healthy else "degraded",
            temporal="ok" if reachable else "unreachable",
            worker=worker,
            temporal_address=state.settings.temporal.address,
            namespace=state.settings.temporal.namespace,
            temporal_ui=state.settings.temporal_ui_url,
            version=state.version,
        )
        return model_response(200 if healthy else 503, body)

    @docs(
        summary="Prometheus metrics",
        tags=["operations"],
        responses={
            200: ResponseInfo(
                "Prometheus text exposition format (every metric: docs/reference/metrics.md).",
                content=[ContentInfo(type=str, content_type=PROMETHEUS_TEXT.decode("ascii"))],
            )
        },
    )
    async def metrics() -> Response:
        """HTTP requests and latency by route, submissions, runs by status, step durations by node
        type, live agents by group, the interpreter worker's state and the run-event queues.

        Run and agent counts come from Temporal, refreshed at most every 10 s."""
        body = await state.metrics.scrape(state.client, state.worker)
        return Response(200, None, Content(PROMETHEUS_TEXT, body))

    router.add_post("/v1/workflows", submit_run)
    router.add_get("/v1/workflows", list_runs)
    router.add_get("/v1/workflows/{id}", get_run)
    router.add_get("/v1/workflows/{id}/snapshot", get_snapshot)
    router.add_delete("/v1/workflows/{id}", cancel_run)
    router.add_get("/v1/workflows/{id}/logs", run_logs)
    register_signal_routes(app, docs, state)
    register_rerun_routes(app, docs, state)
    register_plan_routes(app, docs, state)
    register_schedule_routes(app, docs, state)
    register_hook_routes(app, docs, state)
    router.add_post("/v1/validate", validate)
    router.add_get("/v1/nodes", nodes)
    router.add_get("/v1/agents", agents)
    router.add_get("/healthz", healthz)
    router.add_get("/metrics", metrics)


async def _with_keepalive(
    stream: AsyncIterator[tuple[str, dict[str, object]]],
) -> AsyncIterator[tuple[str, dict[str, object]]]:
    """Pass ``stream`` through, adding a ``keepalive`` item after each quiet ``KEEPALIVE_SECONDS``."""
    iterator = stream.__aiter__()
    pending: asyncio.Task[tuple[str, dict[str, object]]] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE_SECONDS)
            if not done:
                yield "keepalive", {}
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
            yield item
    finally:
        if pending is not None:
            pending.cancel()
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
