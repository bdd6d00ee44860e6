"""A real HTTP server on 127.0.0.1 for the http/request tests, with the endpoints they need."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

# How long /slow keeps a connection open at most, so a test that forgets it cannot hang the
# server thread forever; far longer than any test waits.
SLOW_LIMIT = 60.0


@dataclass
class Seen:
    """What the server received: one entry per request, plus events of /slow connections."""

    requests: list[dict[str, object]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        with self.lock:
            return [str(r["path"]) for r in self.requests]


class Handler(BaseHTTPRequestHandler):
    """Endpoints: /text /json /badjson /status/N /flaky/KEY/N /redirect?to=URL /chain/N /big/N /slow /echo."""

    server: LocalServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest output stays readable."""

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {
            "method": self.command,
            "path": url.path,
            "query": parse_qs(url.query),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        seen = self.server.seen
        with seen.lock:
            seen.requests.append(record)
        parts = url.path.strip("/").split("/")
        route = parts[0]
        if route == "text":
            self._send(200, b"hello\n", "text/plain; charset=utf-8")
        elif route == "json":
            self._send(200, json.dumps({"status": "up", "n": 1}).encode(), "application/json")
        elif route == "badjson":
            self._send(200, b"{not json", "application/json")
        elif route == "status":
            self._send(int(parts[1]), f"status {parts[1]} body".encode(), "text/plain")
        elif route == "flaky":  # /flaky/<key>/<n>: 503 for the first n requests of <key>
            key, times = parts[1], int(parts[2])
            with seen.lock:
                seen.failures[key] += 1
                failing = seen.failures[key] <= times
            self._send(503 if failing else 200, b"starting" if failing else b"healthy", "text/plain")
        elif route == "redirect":
            self._redirect(parse_qs(url.query)["to"][0])
        elif route == "chain":  # /chain/<n>: n redirects, then 200
            hops = int(parts[1])
            if hops:
                self._redirect(f"/chain/{hops - 1}")
            else:
                self._send(200, b"end of chain", "text/plain")
        elif route == "big":
            self._send(200, b"a" * int(parts[1]), "text/plain")
        elif route == "echo":
            self._send(200, json.dumps(record).encode(), "application/json")
        elif route == "slow":
            self._slow()
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Multi", "one")
        self.send_header("X-Multi", "two")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _slow(self) -> None:
        # Headers at once, then one byte every 50 ms: every socket read succeeds, so only a
        # whole-request deadline or a cancellation ends it; a failed write means the client left.
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.server.seen.events.append("slow started")
        deadline = time.monotonic() + SLOW_LIMIT
        try:
            while time.monotonic() < deadline:
                self.wfile.write(b".")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            self.server.seen.events.append("slow disconnected")
            return
        self.server.seen.events.append("slow finished")
        self.close_connection = True


class LocalServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a :class:`Seen` record."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen = Seen()

    @property
    def url(self) -> str:
        """Base URL, no trailing slash."""
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A fresh server per test, so what it saw belongs to that test."""
    srv = LocalServer()
    thread = threading.Thread(target=srv.serve_forever, name="test-http-server", daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
