"""``POST /v1/workflows/{id}/signals/{name}``: answer a run's approval gates (ADR 0029).

The API is the first line of checks: the run must be waiting for ``name`` now (409 otherwise,
naming what it waits for), the caller's token must be among each such gate's approvers (403;
the token's *name* is the identity), and the data must fit the gate's fields (422 naming the
field). Only then is the run signalled with the token name as ``by``. The workflow checks the
same again (anyone with access to Temporal can signal a run) and ignores what does not pass.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from blacksheep import Application, Request, Response
from blacksheep.server.openapi.common import ContentInfo, ResponseInfo
from pydantic import BaseModel, Field
from temporalio.client import WorkflowExecutionStatus

from waterflow_core.dsl.models import SIGNAL_NAME_PATTERN
from waterflow_core.errors import ErrorItem
from waterflow_core.interpreter.approval import check_answer, specs_of
from waterflow_core.runs import GATES_QUERY, SIGNAL, SignalPayload, WaitingFor

from .auth import find_token
from .bodies import read_json_object
from .models import ErrorBody
from .openapi import WaterflowOpenAPI, error_responses
from .problems import APIError, bad_request, model_response, temporal_unavailable
from .runs import status_url, temporal_errors
from .status import api_status

if TYPE_CHECKING:
    from .app import AppState

QUERY_TIMEOUT = timedelta(seconds=10)
SIGNAL_PATH = "/v1/workflows/{id}/signals/{name}"


class SignalRequest(BaseModel):
    """The body of ``POST /v1/workflows/{id}/signals/{name}``."""

    decision: Literal["approve", "reject"] = "approve"
    data: dict[str, Any] = Field(default_factory=dict, description="The gate's typed fields (its `inputs`).")


class SignalAccepted(BaseModel):
    """The signal was delivered to the run; its gates take it as their answer."""

    id: str
    run_id: str
    signal: str
    decision: str
    by: str = Field(description="The name of the API token that sent it (empty when the API has no tokens).")
    steps: list[str] = Field(description="The gates (job/step[#instance]) that waited for this signal.")
    status_url: str


def register_signal_routes(app: Application, docs: WaterflowOpenAPI, state: AppState) -> None:
    """Add the signal endpoint to ``app``."""

    @docs(
        summary="Answer an approval gate",
        tags=["runs"],
        responses={
            202: ResponseInfo("The signal was delivered.", content=[ContentInfo(type=SignalAccepted)]),
            403: ResponseInfo(
                "The token is read-only or not among the gate's approvers, or approvers are set and the "
                "API has no tokens.",
                content=[ContentInfo(type=ErrorBody)],
            ),
            409: ResponseInfo(
                "The run is not (or no longer) waiting for this signal; the message names what it waits for.",
                content=[ContentInfo(type=ErrorBody)],
            ),
            **error_responses(400, 404, 413, 415, 503),
            422: ResponseInfo(
                "The data does not fit the gate's fields (errors names each field as data.<field>).",
                content=[ContentInfo(type=ErrorBody)],
            ),
        },
    )
    async def send_signal(request: Request, id: str, name: str) -> Response:
        """Approve (or reject, with ``"decision": "reject"``) the gates of run ``id`` that wait for
        signal ``name``; ``data`` carries their typed fields. Needs an operator token, and one
        named in the gate's ``approvers`` when it has any."""
        if not re.match(SIGNAL_NAME_PATTERN, name):
            raise bad_request("signal names use letters, digits and _ . - (at most 100 characters)")
        body = await _read_request(request, state.settings.max_body_bytes)
        handle, description = await state.runs.describe(id)
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise APIError(409, "not_waiting", f"run {id!r} already finished ({api_status(description.status)})")
        try:
            gates = await handle.query(GATES_QUERY, result_type=list[WaitingFor], rpc_timeout=QUERY_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - no worker answered; nothing was signalled
            raise temporal_unavailable(f"the run did not say what it waits for: {exc}") from None
        matching = [gate for gate in gates if gate.signal == name]
        if not matching:
            raise APIError(409, "not_waiting", f"run {id!r} is not waiting for signal {name!r}; {_waits(gates)}")
        by = _token_name(request, state)
        for gate in matching:
            _check_approver(gate, by)
        problems = [
            ErrorItem(line=0, column=0, path=where, message=f"{message} (gate {gate.step})")
            for gate in matching
            for where, message in check_answer(specs_of(gate), body.decision, body.data)[1]
        ]
        if problems:
            first = f"{problems[0].path}: {problems[0].message}"
            message = first if len(problems) == 1 else f"{len(problems)} problems, the first: {first}"
            raise APIError(422, "invalid_signal", message, problems)
        payload = SignalPayload(name=name, decision=body.decision, data=body.data, by=by or "")
        with temporal_errors(id):
            await handle.signal(SIGNAL, payload)
        accepted = SignalAccepted(
            id=id,
            run_id=description.run_id or "",
            signal=name,
            decision=body.decision,
            by=by or "",
            steps=[gate.step for gate in matching],
            status_url=status_url(id),
        )
        return model_response(202, accepted)

    app.router.add_post(SIGNAL_PATH, send_signal)


async def _read_request(request: Request, limit: int) -> SignalRequest:
    value = await read_json_object(request, limit, '{"data": {...}, "decision": "approve"}')
    if value is None:
        return SignalRequest()
    unknown = sorted(set(value) - {"data", "decision"})
    if unknown:
        raise bad_request(f"unknown key(s) in the request body: {', '.join(unknown)} (allowed: data, decision)")
    if "decision" in value and value["decision"] not in ("approve", "reject"):
        raise APIError(
            422,
            "invalid_signal",
            "decision must be 'approve' or 'reject'",
            [ErrorItem(line=0, column=0, path="decision", message="must be 'approve' or 'reject'")],
        )
    if "data" in value and not isinstance(value["data"], dict):
        raise APIError(
            422,
            "invalid_signal",
            "data must be a JSON object",
            [ErrorItem(line=0, column=0, path="data", message="must be a JSON object")],
        )
    return SignalRequest.model_validate(value)


def _token_name(request: Request, state: AppState) -> str | None:
    """The name of the token that authenticated ``request`` (the guard checked it); None without tokens."""
    tokens = state.settings.tokens
    if not tokens:
        return None
    header = (request.get_first_header(b"authorization") or b"").decode("latin-1").strip()
    _, _, presented = header.partition(" ")
    token = find_token(tokens, presented.strip())
    if token is None:  # the guard lets no such request through; refuse rather than trust it
        raise APIError(401, "unauthorized", "the bearer token is not valid")
    return token.name


def _check_approver(gate: WaitingFor, by: str | None) -> None:
    if not gate.approvers:
        return
    listed = ", ".join(gate.approvers)
    if by is None:
        raise APIError(
            403,
            "not_an_approver",
            f"gate {gate.step} names approvers ({listed}), and approvers are API token names: "
            "this server has no API tokens configured (set WATERFLOW_API_TOKEN or a token file)",
        )
    if by not in gate.approvers:
        raise APIError(
            403, "not_an_approver", f"token {by!r} is not among the approvers of gate {gate.step} ({listed})"
        )


def _waits(gates: list[WaitingFor]) -> str:
    if not gates:
        return "it waits for no signal now"
    shown = ", ".join(f"{gate.signal!r} (step {gate.step})" for gate in gates[:10])
    return f"it waits for: {shown}"
