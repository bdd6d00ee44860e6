"""HTTP downloads and uploads for ``file/transfer`` (httpx, streamed, guarded)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from .atomic import READ_CHUNK, AtomicFile
from .blocking import blocking
from .errors import bad_input, failed
from .netguard import check_url

# Answers worth another attempt: the server or something in front of it may recover.
RETRYABLE_STATUS = frozenset({408, 425, 429})
MAX_REDIRECTS = 10
HEARTBEAT_EVERY = 8 * 1024 * 1024


def _client(timeout: float, field: str) -> httpx.AsyncClient:
    async def guard(request: httpx.Request) -> None:
        # Runs for every request, redirects included, before anything is sent.
        await check_url(request.url, field)

    # trust_env=False: proxy variables in the agent's environment would route around the address
    # guard; proxies belong to http/request's network policy (docs/adr/0016-file-transfer.md).
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
        event_hooks={"request": [guard]},
    )


def _status_error(method: str, url: httpx.URL, response: httpx.Response) -> ApplicationError:
    code = response.status_code
    retryable = code >= 500 or code in RETRYABLE_STATUS
    return failed(
        f"{method} {url} answered {code} {response.reason_phrase}".rstrip(),
        retryable=retryable,
        status=code,
    )


def _transport_error(method: str, url: httpx.URL, exc: Exception) -> ApplicationError:
    if isinstance(exc, httpx.TooManyRedirects):
        return failed(f"{method} {url}: more than {MAX_REDIRECTS} redirects", retryable=False)
    if isinstance(exc, httpx.UnsupportedProtocol):
        return bad_input(f"{method} {url}: {exc}")
    # Connection refused, DNS failure, timeouts, a connection dropped mid-body: may pass.
    return failed(f"{method} {url}: {type(exc).__name__}: {exc or 'no detail'}", retryable=True)


async def download(
    url: httpx.URL, out: AtomicFile, *, timeout: float, heartbeat: Callable[..., None]
) -> None:
    """Stream ``url`` into ``out``, hashing while writing and stopping at its ``max_bytes``."""
    async with _client(timeout, "source") as client:
        try:
            async with client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise _status_error("GET", url, response)
                declared = response.headers.get("content-length", "")
                if out.max_bytes is not None and declared.isdigit() and int(declared) > out.max_bytes:
                    raise failed(
                        f"GET {url}: Content-Length {declared} is more than max-bytes ({out.max_bytes}); "
                        "nothing was written",
                        retryable=False,
                        max_bytes=out.max_bytes,
                    )
                reported = 0
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
                    if out.size - reported >= HEARTBEAT_EVERY:
                        reported = out.size
                        heartbeat({"bytes": out.size})
        except httpx.HTTPError as exc:
            raise _transport_error("GET", url, exc) from None


async def _file_chunks(path: Path, max_bytes: int | None, digest: Any, counter: list[int]) -> AsyncIterator[bytes]:
    fd = await blocking(os.open, path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while chunk := await blocking(os.read, fd, READ_CHUNK):
            counter[0] += len(chunk)
            if max_bytes is not None and counter[0] > max_bytes:
                raise failed(f"source {str(path)!r} grew past max-bytes ({max_bytes}) while uploading", retryable=False)
            digest.update(chunk)
            yield chunk
    finally:
        os.close(fd)


async def upload(
    url: httpx.URL,
    method: str,
    *,
    content: bytes | None,
    path: Path | None,
    timeout: float,
    max_bytes: int | None,
) -> tuple[int, str]:
    """Send ``content`` or the file at ``path`` with ``method``; return (bytes sent, sha256)."""
    digest = hashlib.sha256()
    counter = [0]
    body: bytes | AsyncIterator[bytes]
    if content is not None:
        size = len(content)
        body = content
        digest.update(content)
        counter[0] = size
    else:
        assert path is not None
        size = (await blocking(os.stat, path)).st_size
        body = _file_chunks(path, max_bytes, digest, counter)
    if max_bytes is not None and size > max_bytes:
        raise failed(f"{size} bytes to upload is more than max-bytes ({max_bytes})", retryable=False)
    async with _client(timeout, "destination") as client:
        try:
            # An explicit length: many upload endpoints refuse chunked bodies.
            response = await client.request(method, url, content=body, headers={"Content-Length": str(size)})
        except httpx.HTTPError as exc:
            raise _transport_error(method, url, exc) from None
    if response.status_code >= 400:
        raise _status_error(method, url, response)
    return counter[0], digest.hexdigest()
