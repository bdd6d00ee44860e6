"""The ``http/request`` node: one HTTP request per attempt, checked against the network policy."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from waterflow_core.errors import ErrorCode
from waterflow_core.node import Node, NodeContext

from .models import MAX_REDIRECTS, RequestInputs, RequestOutputs
from .policy import NetworkPolicy, RefusedByPolicy
from .transport import PolicyTransport

#: A refusal by the network policy: configuration, never fixed by retrying.
ERROR_REFUSED = "WaterflowHttpRefused"
BODY_IN_MESSAGE = 512  # characters of an unexpected response's body quoted in the error message
BODY_IN_DETAILS = 64 * 1024


class RequestNode(Node):
    """Send one HTTP request; fail unless the status is expected (so ``retry:`` can wait for it)."""

    type = "http/request"
    version = "1.0.0"
    description = "Send an HTTP request; fail unless the status is expected (2xx by default)."

    # Module-level models (importable for tests and type hints) rather than nested classes.
    Inputs = RequestInputs  # type: ignore[assignment]
    Outputs = RequestOutputs  # type: ignore[assignment]

    async def run(self, ctx: NodeContext, inputs: RequestInputs) -> RequestOutputs:
        """One attempt: connect (policy-checked), send, read the bounded body, check the status."""
        try:
            policy = NetworkPolicy.from_env()
        except ValueError as err:  # the agent's configuration, not the step's: still not retryable
            raise _bad_input(f"invalid network policy on agent {ctx.agent or '(local)'}: {err}") from None
        ssl_context = _ssl_context(ctx, inputs)

        def connecting(host: str, address: str, port: int) -> None:
            ctx.log.debug("connecting to %s (%s) port %d", host, address, port)

        transport = PolicyTransport(policy, ssl_context, on_connect=connecting)
        started = time.monotonic()
        try:
            # Bounds the whole attempt (connect, redirects, slow bodies), not just each socket read.
            async with asyncio.timeout(inputs.timeout):
                async with httpx.AsyncClient(transport=transport, trust_env=False, timeout=inputs.timeout) as client:
                    request = _build_request(client, inputs)
                    ctx.log.info("%s %s", request.method, redact(request.url))
                    outputs = await _send(ctx, client, request, inputs, started)
        except RefusedByPolicy as err:
            raise ApplicationError(str(err), type=ERROR_REFUSED, non_retryable=True) from None
        except (TimeoutError, httpx.TimeoutException):
            raise _failed(f"{inputs.method} {redact(inputs.url)} timed out after {inputs.timeout:g}s") from None
        except httpx.TooManyRedirects:
            raise _failed(f"{inputs.method} {redact(inputs.url)}: more than {MAX_REDIRECTS} redirects") from None
        except httpx.InvalidURL as err:
            raise _bad_input(f"url: {err}") from None
        except httpx.HTTPError as err:  # connection refused, reset, TLS failure, protocol error
            raise _failed(f"{inputs.method} {redact(inputs.url)} failed: {type(err).__name__}: {err}") from None
        if not inputs.expected(outputs.status):
            raise _unexpected_status(inputs, outputs)
        return outputs


async def _send(
    ctx: NodeContext, client: httpx.AsyncClient, request: httpx.Request, inputs: RequestInputs, started: float
) -> RequestOutputs:
    # Redirects are followed here rather than by httpx: httpx reads every redirect's body in
    # full, unbounded. next_request is built by httpx, so it drops Authorization when the
    # origin changes, and its connection goes through the policy backend again.
    for _hop in range(MAX_REDIRECTS + 1):
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            if inputs.follow_redirects and response.next_request is not None:
                ctx.log.info("%d redirect to %s", response.status_code, redact(response.next_request.url))
                request = response.next_request
                continue
            body, truncated = await _read_bounded(response, inputs.max_body_bytes)
        finally:
            await response.aclose()
        if truncated:
            ctx.log.warning("response body longer than max-body-bytes (%d); kept its start", inputs.max_body_bytes)
        text = body.decode(response.encoding or "utf-8", errors="replace")
        return RequestOutputs.model_validate(
            {
                "status": response.status_code,
                "headers": _headers(response.headers),
                "body": text,
                "json": None if truncated else _parse_json(ctx, response, text),
                "elapsed-ms": round((time.monotonic() - started) * 1000),
                "url": redact(response.url),
                "truncated": truncated,
            }
        )
    raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=request)


async def _read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the (decoded) body; stop reading, rather than drain, past it."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        if size + len(chunk) > limit:
            chunks.append(chunk[: limit - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _build_request(client: httpx.AsyncClient, inputs: RequestInputs) -> httpx.Request:
    headers = dict(inputs.headers)
    if inputs.auth is not None:
        # Set as a header, not httpx's auth=: httpx would re-apply auth= on every redirect hop,
        # while a header is dropped by httpx when a redirect leaves the origin.
        if inputs.auth.type == "basic":
            pair = f"{inputs.auth.username}:{inputs.auth.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            headers["Authorization"] = f"Bearer {inputs.auth.token}"
    content: bytes | None = None
    if "json_" in inputs.model_fields_set:
        # Encoded here: httpx treats json=None as "no body", but `json: null` means send null.
        content = json.dumps(inputs.json_, ensure_ascii=False, separators=(",", ":")).encode()
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
    elif inputs.body is not None:
        content = inputs.body.encode()
    try:
        # Merged here: httpx's params= would replace a query already written in the URL.
        url = httpx.URL(inputs.url).copy_merge_params(inputs.query) if inputs.query else httpx.URL(inputs.url)
        return client.build_request(inputs.method, url, headers=headers, content=content, data=inputs.form)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as err:
        raise _bad_input(f"url: {err}") from None


def _ssl_context(ctx: NodeContext, inputs: RequestInputs) -> ssl.SSLContext:
    if not inputs.verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if inputs.ca_bundle is None:
        return ssl.create_default_context()
    path = Path(ctx.workdir) / Path(inputs.ca_bundle).expanduser()
    try:
        return ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as err:
        raise _bad_input(f"ca-bundle {str(path)!r} cannot be loaded: {err}") from None


def _headers(headers: httpx.Headers) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


def _parse_json(ctx: NodeContext, response: httpx.Response, text: str) -> Any:
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not (media == "application/json" or media.endswith("+json")):
        return None
    try:
        return json.loads(text)
    except ValueError as err:
        ctx.log.warning("response says %s but is not valid JSON (%s); outputs.json is null", media, err)
        return None


def redact(url: httpx.URL | str) -> str:
    """``url`` without a password in its user info (messages and outputs are shown to users)."""
    parsed = httpx.URL(url) if isinstance(url, str) else url
    if not parsed.password:
        return str(parsed)
    return str(parsed.copy_with(username=parsed.username, password="***"))  # noqa: S106 - a mask, not a password


def _unexpected_status(inputs: RequestInputs, outputs: RequestOutputs) -> ApplicationError:
    snippet = outputs.body[:BODY_IN_MESSAGE] + ("…" if len(outputs.body) > BODY_IN_MESSAGE else "")
    message = f"{inputs.method} {outputs.url} returned {outputs.status}, expected {inputs.expected_text()}"
    details = outputs.model_dump(mode="json", by_alias=True)
    details["body"] = outputs.body[:BODY_IN_DETAILS]
    details.pop("json", None)
    # Retryable: "wait until healthy" is `expect-status` plus the step's `retry:`.
    return _failed(f"{message}\n{snippet}" if snippet.strip() else message, details)


def _failed(message: str, *details: Any) -> ApplicationError:
    return ApplicationError(message, *details, type=ErrorCode.STEP_FAILED.value)


def _bad_input(message: str) -> ApplicationError:
    return ApplicationError(message, type=ErrorCode.BAD_INPUT.value, non_retryable=True)
