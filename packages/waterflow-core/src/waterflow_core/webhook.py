"""The built-in ``webhook`` event handler: one HTTP POST of JSON per event, signed, retried.

Standard library only (``http.client`` in a thread): it never follows a redirect, since nothing
here knows how to, and a 3xx answer is a configuration mistake reported as such.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import json
import logging
import re
import ssl
from collections.abc import Mapping
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from .providers import EventHandler

__all__ = ["DELIVERY_HEADER", "EVENT_HEADER", "SIGNATURE_HEADER", "WebhookError", "WebhookEventHandler"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Waterflow-Signature-256"
"""``sha256=<hex HMAC-SHA256 of the body>`` with the ``secret`` option as key (as GitHub's
``X-Hub-Signature-256``); sent only when a secret is configured."""
EVENT_HEADER = "X-Waterflow-Event"
"""The event's ``type``."""
DELIVERY_HEADER = "X-Waterflow-Delivery"
"""The event's ``id``: the same on every delivery of the same event (de-duplicate on it)."""

MAX_BACKOFF = 30.0
_RESPONSE_READ = 64 * 1024
# RFC 9110 token: what a header name may be.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_RESERVED = frozenset(
    name.lower() for name in ("Content-Type", "Content-Length", "Host", "User-Agent", "Transfer-Encoding", "Connection")
) | {SIGNATURE_HEADER.lower(), EVENT_HEADER.lower(), DELIVERY_HEADER.lower()}
_UNSAFE_HEADER_CHARS = re.compile(r"[^\x20-\x7e]")


class WebhookError(Exception):
    """An event could not be delivered (after the retries, or at once when retrying cannot help)."""


def _user_agent() -> str:
    try:
        return f"waterflow-webhook/{metadata.version('waterflow-core')}"
    except metadata.PackageNotFoundError:
        return "waterflow-webhook"


class WebhookEventHandler(EventHandler):
    """POSTs each event as a JSON object to ``url``; 2xx is delivered, 5xx/408/429/network errors are retried."""

    name = "webhook"

    class Options(EventHandler.Options):
        url: str
        """``http://`` or ``https://`` (system CAs verify the certificate); no user:password part."""
        headers: dict[str, str] = Field(default_factory=dict)
        """Extra request headers (e.g. ``Authorization``); never logged."""
        secret: SecretStr | None = None
        """Key of the HMAC-SHA256 signature header; never logged."""
        timeout: float = Field(10.0, gt=0, le=300)
        """Seconds for one attempt (connect, send, answer)."""
        retries: int = Field(5, ge=0, le=100)
        """Attempts after the first one, for answers and errors that may pass."""
        backoff: float = Field(0.5, ge=0, le=60)
        """Seconds before the first retry; doubles on each retry, up to 30 s."""

        @field_validator("url")
        @classmethod
        def _http_url(cls, value: str) -> str:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https"):
                raise ValueError("must be an http:// or https:// URL")
            if not parts.hostname:
                raise ValueError("has no host")
            if parts.username is not None or parts.password is not None:
                raise ValueError("must not carry a user or password (send credentials with the headers option)")
            if _UNSAFE_HEADER_CHARS.search(value):
                raise ValueError("must be plain ASCII without spaces or control characters")
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
            return value

        @field_validator("headers")
        @classmethod
        def _plain_headers(cls, value: dict[str, str]) -> dict[str, str]:
            for name, text in value.items():
                if not _TOKEN.fullmatch(name):
                    raise ValueError(f"header name {name[:40]!r} is not a valid HTTP header name")
                if name.lower() in _RESERVED:
                    raise ValueError(f"header {name} is set by Waterflow")
                if _UNSAFE_HEADER_CHARS.search(text.replace("\t", " ")):
                    raise ValueError(f"the value of header {name} has a line break or control character")
            return value

    options: Options

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        parts = urlsplit(self.options.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # What messages name: never the query (it may hold a token) nor any header.
        self.target = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"
        self._context = ssl.create_default_context() if self._https else None
        self._user_agent = _user_agent()

    async def handle(self, event: Mapping[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str).encode()
        headers = self._headers(event, body)
        attempt = 0
        while True:
            retryable = True
            try:
                status = await asyncio.to_thread(self._post, body, headers)
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if 200 <= status < 300:
                    return
                problem = f"HTTP {status}"
                if 300 <= status < 400:
                    problem += " (redirects are not followed: point the url option at the final address)"
                retryable = status >= 500 or status in (408, 429)
            if not retryable or attempt >= self.options.retries:
                raise WebhookError(
                    f"webhook {self.target}: event {event.get('id')} not delivered after "
                    f"{attempt + 1} attempt(s): {problem}"
                )
            delay = min(self.options.backoff * 2**attempt, MAX_BACKOFF)
            log.info("webhook %s: %s; retrying in %.1fs", self.target, problem, delay)
            await asyncio.sleep(delay)
            attempt += 1

    def _headers(self, event: Mapping[str, Any], body: bytes) -> dict[str, str]:
        headers = {
            **self.options.headers,
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            EVENT_HEADER: _header_value(event.get("type")),
            DELIVERY_HEADER: _header_value(event.get("id")),
        }
        if self.options.secret is not None:
            key = self.options.secret.get_secret_value().encode()
            headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        return headers

    def _post(self, body: bytes, headers: dict[str, str]) -> int:
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.options.timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self.options.timeout)
        try:
            connection.request("POST", self._path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(_RESPONSE_READ)  # bounded: a hostile receiver cannot make us buffer much
            return response.status
        finally:
            connection.close()


def _header_value(value: Any) -> str:
    """Event fields in headers: printable ASCII only (ids hold user-chosen workflow ids), bounded."""
    return _UNSAFE_HEADER_CHARS.sub("?", str(value if value is not None else ""))[:300]
