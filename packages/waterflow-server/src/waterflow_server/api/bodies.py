"""Reading request bodies: the size cap, and the two shapes of a submission (YAML or JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from blacksheep import Request

from waterflow_core.dsl.strict_yaml import MAX_DEPTH
from waterflow_core.limit import LimitError, parse_limit

from .problems import APIError, bad_request

MAX_JSON_DEPTH = MAX_DEPTH + 1
"""Deepest nesting a JSON body or ``inputs`` may have: an input nests no deeper than YAML may,
and the envelope adds one level. Deeper documents are refused before anything recurses into them."""

JSON_TYPES = ("application/json",)
"""Content types read as a JSON envelope (``+json`` suffixes too); any other text is YAML."""


def too_large(limit: int) -> APIError:
    """413 for a body over ``limit`` bytes."""
    return APIError(413, "payload_too_large", f"request body is larger than the limit of {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) anything over ``limit`` bytes without buffering it all."""
    declared = request.get_first_header(b"content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large(limit)
        except ValueError:
            raise bad_request("invalid Content-Length header") from None
    chunks: list[bytes] = []
    size = 0
    # blacksheep declares stream() as a plain method returning a generator; it is an async generator.
    async for chunk in request.stream():  # type: ignore[attr-defined]
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(request: Request) -> str:
    raw = request.get_first_header(b"content-type") or b""
    return raw.decode("latin-1").split(";", 1)[0].strip().lower()


def is_json(request: Request) -> bool:
    """Whether the body is a JSON envelope rather than bare workflow YAML."""
    media = _media_type(request)
    return media in JSON_TYPES or media.endswith("+json")


@dataclass
class Submission:
    """A workflow text with its inputs and optional id, whatever shape it arrived in."""

    workflow: str
    inputs: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    inputs_given: bool = False
    limit: list[str] | None = None
    """``--limit``: the patterns each-server jobs keep their servers by (waterflow_core.limit)."""
    check: bool = False
    """``--check``: a check run (ADR 0041)."""


def utf8_text(body: bytes) -> str:
    """``body`` decoded as UTF-8, or a 400 naming the first bad byte."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"request body is not UTF-8 text (byte {exc.start})") from None


async def read_json_object(request: Request, limit: int, shape: str) -> dict[str, Any] | None:
    """The body as a JSON object, ``None`` when it is empty; a 400 naming ``shape`` (an example
    of what to send) for anything else."""
    body = await read_body(request, limit)
    if not body.strip():
        return None
    value = parse_json(utf8_text(body), "the request body")
    if not isinstance(value, dict):
        raise bad_request(f"the request body must be a JSON object: {shape}")
    return value


def parse_json(text: str, what: str) -> Any:
    """``text`` as JSON, or a 400 naming ``what`` (invalid, or nested deeper than :data:`MAX_JSON_DEPTH`)."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise bad_request(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:
        raise bad_request(f"{what} is not valid JSON: {exc}") from None
    if _depth_over(value, MAX_JSON_DEPTH):
        raise bad_request(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python accepts them and they break JSON answers later.
    raise ValueError(f"{name} is not a JSON value")


def _depth_over(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit`` (iterative: the depth is what is in doubt)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


def _query_inputs(request: Request) -> tuple[dict[str, Any], bool]:
    """Inputs given in the query string of a YAML submission: ``inputs=<JSON object>``."""
    raw = request.query.get("inputs")
    if not raw:
        return {}, False
    value = parse_json(raw[0], "query parameter 'inputs'")
    if not isinstance(value, dict):
        raise bad_request("query parameter 'inputs' must be a JSON object")
    return value, True


async def read_submission(request: Request, limit: int) -> Submission:
    """Parse ``POST /v1/workflows`` or ``POST /v1/validate``.

    JSON: ``{"workflow": "<yaml>", "inputs": {...}, "id": "...", "limit": "web-*,group:db",
    "check": true}``. Anything else: the body is the workflow YAML, with ``id``, ``inputs`` (a
    JSON object), ``limit`` and ``check`` (``true``/``false``) in the query string.
    """
    media = _media_type(request)
    if media.startswith("multipart/"):
        raise APIError(
            415,
            "unsupported_media_type",
            "send the workflow as YAML (application/yaml) or as JSON (application/json), not multipart",
        )
    body = await read_body(request, limit)
    if not body.strip():
        raise bad_request("request body is empty; send the workflow YAML or a JSON envelope")
    text = utf8_text(body)
    if not is_json(request):
        inputs, given = _query_inputs(request)
        ids = request.query.get("id")
        limits = request.query.get("limit")
        checks = request.query.get("check")
        return Submission(
            workflow=text,
            inputs=inputs,
            id=ids[0] if ids else None,
            inputs_given=given,
            limit=_limit(limits[0] if limits else None),
            check=_check(checks[0] if checks else False),
        )
    document = parse_json(text, "request body")
    if not isinstance(document, dict):
        raise bad_request("JSON body must be an object with a 'workflow' key")
    unknown = sorted(set(document) - {"workflow", "inputs", "id", "limit", "check"})
    if unknown:
        raise bad_request(f"unknown key(s) in JSON body: {', '.join(unknown)}")
    workflow = document.get("workflow")
    if not isinstance(workflow, str):
        raise bad_request("'workflow' must be the workflow YAML as a string")
    json_inputs = document.get("inputs")
    if json_inputs is not None and not isinstance(json_inputs, dict):
        raise bad_request("'inputs' must be an object")
    run_id = document.get("id")
    if run_id is not None and not isinstance(run_id, str):
        raise bad_request("'id' must be a string")
    return Submission(
        workflow=workflow,
        inputs=json_inputs or {},
        id=run_id,
        inputs_given=json_inputs is not None,
        limit=_limit(document.get("limit")),
        check=_check(document.get("check", False)),
    )


def _check(value: Any) -> bool:
    """``check``: a JSON boolean, or ``true``/``false`` in the query string; else a 400."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise bad_request(f"'check' must be true or false, got {value!r:.40}")


def _limit(value: Any) -> list[str] | None:
    """The ``limit`` patterns, or a 400 naming each bad one."""
    try:
        return parse_limit(value)
    except LimitError as exc:
        raise bad_request("'limit': " + "; ".join(item.message for item in exc.errors)) from None


__all__ = ["MAX_JSON_DEPTH", "Submission", "is_json", "parse_json", "read_body", "read_submission", "too_large"]
