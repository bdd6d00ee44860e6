"""``POST /v1/hooks/{name}``: an inbound webhook starts its workflow (ADR 0037).

No bearer token: the request guard lets hook paths through, and the credential is the HMAC-SHA256
of the exact body under the hook's secret, in ``X-Waterflow-Signature-256`` or GitHub's
``X-Hub-Signature-256`` (``sha256=<hex>``), compared in constant time before the body is parsed.
The body is read within the server's body limit. The hook's templates map the JSON payload and
the headers to the workflow's inputs, typed as a submission's are; its ``id`` template makes the
run id, so a redelivery (the same delivery id) starts no second run.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from blacksheep import Application, Request, Response
from blacksheep.server.openapi.common import ContentInfo, ResponseInfo

from waterflow_core.errors import ErrorItem, ExpressionError

from .bodies import Submission, parse_json, read_body, utf8_text
from .models import ErrorBody, RunRef
from .openapi import WaterflowOpenAPI, error_responses
from .problems import APIError, model_response, not_found
from .runs import check_run_id

if TYPE_CHECKING:
    from ..hooks_config import Hook
    from .app import AppState

SIGNATURE_HEADERS = (b"x-waterflow-signature-256", b"x-hub-signature-256")
PREFIX = "sha256="


def signature_problem(hook: Hook, body: bytes, request: Request) -> str | None:
    """Why the request's signature does not prove it came from a holder of the hook's secret."""
    presented = next(
        (value for name in SIGNATURE_HEADERS if (value := request.get_first_header(name)) is not None), None
    )
    if presented is None:
        return (
            "missing signature: send X-Waterflow-Signature-256 (or X-Hub-Signature-256): "
            "sha256=<HMAC-SHA256 hex of the body>"
        )
    text = presented.decode("latin-1").strip()
    if not text.startswith(PREFIX):
        return "the signature must be 'sha256=<hex>'"
    expected = hmac.new(hook.secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), text[len(PREFIX) :].lower().encode("latin-1")):
        return "the signature does not match the body"
    return None


def _unmappable(path: str, message: str) -> APIError:
    return APIError(
        422, "invalid_inputs", f"{path}: {message}", [ErrorItem(line=0, column=0, path=path, message=message)]
    )


def map_delivery(hook: Hook, payload: Any, headers: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """The inputs and run id a delivery maps to; 422 naming the input (or ``id``) that fails.

    An input whose template yields null is left out (the workflow's default, or its "missing
    input" error, applies).
    """
    contexts = {"payload": payload, "headers": headers}
    inputs: dict[str, Any] = {}
    for name, template in hook.inputs.items():
        try:
            value = template.render(contexts)
        except ExpressionError as exc:
            raise _unmappable(f"inputs.{name}", f"{template.text}: {exc}") from None
        if value is not None:
            inputs[name] = value
    run_id: str | None = None
    if hook.id is not None:
        try:
            # Each part must be there: a missing delivery header must not give every delivery one id.
            for _, part in hook.id.expressions:
                if part.evaluate(contexts) in (None, ""):
                    raise _unmappable("id", f"{hook.id.text}: $<< {part.source.strip()} >> is empty or missing")
            rendered = hook.id.render(contexts)
        except ExpressionError as exc:
            raise _unmappable("id", f"{hook.id.text}: {exc}") from None
        run_id = "" if rendered is None else str(rendered)
        try:
            check_run_id(run_id)
        except APIError as err:
            raise _unmappable("id", f"{hook.id.text} gave {run_id[:80]!r}: {err.message}") from None
    return inputs, run_id


def register_hook_routes(app: Application, docs: WaterflowOpenAPI, state: AppState) -> None:
    """Add the inbound webhook endpoint to ``app``."""

    def error(text: str) -> ResponseInfo:
        return ResponseInfo(text, content=[ContentInfo(type=ErrorBody)])

    @docs(
        summary="Receive an inbound webhook",
        tags=["hooks"],
        responses={
            202: ResponseInfo("A run was started.", content=[ContentInfo(type=RunRef)]),
            200: ResponseInfo(
                "The delivery's run id names an existing run (a redelivery); nothing new was started.",
                content=[ContentInfo(type=RunRef)],
            ),
            401: error("The signature is missing or does not match the body under the hook's secret."),
            404: error("No hook with this name is configured."),
            **error_responses(400, 413, 415, 503),
            422: error("The payload does not map to valid inputs (errors names the input, or id)."),
        },
    )
    async def receive_hook(request: Request, name: str) -> Response:
        """Start the hook's workflow with inputs mapped from the JSON payload and headers.

        Authenticated by ``X-Waterflow-Signature-256`` or ``X-Hub-Signature-256``:
        ``sha256=`` and the hex HMAC-SHA256 of the body under the hook's secret; no bearer
        token. Hooks are configured on the server (``--hooks FILE``), not through the API.
        """
        hooks = state.settings.hooks
        body = await read_body(request, state.settings.max_body_bytes)
        hook = hooks.get(name)
        if hook is None:
            raise not_found(f"no hook named {name!r}")
        problem = signature_problem(hook, body, request)
        if problem is not None:
            raise APIError(401, "bad_signature", problem)
        text = utf8_text(body)
        payload = parse_json(text, "the payload") if text.strip() else None
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in request.headers.items()}
        inputs, run_id = map_delivery(hook, payload, headers)
        submission = Submission(workflow=hook.workflow, inputs=inputs, id=run_id, inputs_given=True)
        try:
            ref = await state.runs.submit(submission)
        except APIError as err:
            # A redelivery while the first delivery's run still runs: that run is the answer.
            if err.status == 409 and run_id is not None and err.extra.get("id") == run_id:
                return model_response(200, RunRef(created=False, **err.extra))
            raise
        return model_response(202 if ref.created else 200, ref, [(b"Location", ref.status_url.encode())])

    app.router.add_post("/v1/hooks/{name}", receive_hook)


__all__ = ["map_delivery", "register_hook_routes", "signature_problem"]
