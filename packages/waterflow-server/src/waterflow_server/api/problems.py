"""API errors: every failure leaves the server as JSON (:class:`ErrorBody`), never as a traceback.

Handlers raise :class:`APIError` (or one of its subclasses); :func:`install_error_handlers`
turns those, unknown routes, wrong methods and unexpected exceptions into JSON responses.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Iterable
from typing import Any

from blacksheep import Application, Request, Response
from blacksheep.contents import Content
from blacksheep.exceptions import HTTPException
from pydantic import BaseModel, ValidationError

from waterflow_core.errors import ErrorItem, WorkflowValidationError

from .models import ErrorBody

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error answer: HTTP ``status``, a stable ``code``, a message and placed problems."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: Iterable[ErrorItem] = (),
        *,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = list(errors)
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """The JSON document sent to the client."""
        doc = ErrorBody(code=self.code, message=self.message, errors=self.errors).model_dump(mode="json")
        doc.update(self.extra)
        return doc


def invalid_workflow(exc: WorkflowValidationError) -> APIError:
    """422 listing every problem of a rejected workflow or of its inputs."""
    count = len(exc.errors)
    first = str(exc.errors[0]) if exc.errors else "invalid workflow"
    message = first if count == 1 else f"{count} problems, the first: {first}"
    return APIError(422, "invalid_workflow", message, exc.errors)


def bad_request(message: str, code: str = "bad_request") -> APIError:
    """400: the request itself is malformed (not the workflow in it)."""
    return APIError(400, code, message)


def not_found(message: str) -> APIError:
    """404: no such run (or resource)."""
    return APIError(404, "not_found", message)


def temporal_unavailable(detail: str) -> APIError:
    """503: Temporal cannot be reached; the request can be retried."""
    return APIError(503, "temporal_unavailable", f"Temporal is unavailable: {detail}")


def json_response(status: int, document: Any, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
    """A JSON response from an already JSON-compatible document."""
    import json

    data = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(status, headers, Content(b"application/json", data))


def model_response(
    status: int, model: BaseModel, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    """A JSON response from a model (one of :mod:`.api_models`)."""
    return json_response(status, model.model_dump(mode="json"), headers)


PRIVATE_HEADERS = ((b"Cache-Control", b"no-store"), (b"X-Content-Type-Options", b"nosniff"))
"""Never stored, never sniffed: on every error answer, whichever path raised it, and (from the
request guard) on every answer of the API."""


def error_response(error: APIError) -> Response:
    """The response for ``error``."""
    return json_response(error.status, error.body(), list(PRIVATE_HEADERS))


def install_error_handlers(app: Application) -> None:
    """Route every error path of ``app`` to a JSON :class:`ErrorBody`."""

    async def on_api_error(app_: Application, request: Request, exc: APIError) -> Response:
        return error_response(exc)

    async def on_http_exception(app_: Application, request: Request, exc: HTTPException) -> Response:
        status = exc.status
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        if status == 404:
            message = f"no such resource: {request.method} {request.path}"
            return error_response(APIError(404, "not_found", message))
        if status == 405:
            message = f"method {request.method} is not allowed on {request.path}"
            return error_response(APIError(405, "method_not_allowed", message))
        if status >= 500:
            log.error("internal error on %s %s: %s", request.method, request.path, exc)
            return error_response(APIError(500, "internal_error", "internal server error"))
        return error_response(APIError(status, phrase.lower().replace(" ", "_"), str(exc) or phrase))

    async def on_unexpected(app_: Application, request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return error_response(APIError(500, "internal_error", "internal server error; see the server log"))

    async def on_model_error(app_: Application, request: Request, exc: ValidationError) -> Response:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        return error_response(bad_request(f"invalid request body: {details}"))

    app.exceptions_handlers[APIError] = on_api_error
    app.exceptions_handlers[ValidationError] = on_model_error
    for status in http.HTTPStatus:
        if status.value >= 400:
            app.exceptions_handlers[status.value] = on_http_exception
    app.exceptions_handlers[Exception] = on_unexpected
