"""A real HTTP server on 127.0.0.1 for the file/transfer tests."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

SLOW_FIRST_CHUNK = 64 * 1024
SLOW_TOTAL = 10 * 1024 * 1024


class FileServer(ThreadingHTTPServer):
    """Serves ``files`` by name, stores uploads, and can hold a body back until ``release``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.uploads: dict[str, tuple[str, bytes]] = {}
        self.hits: Counter[str] = Counter()
        self.slow_started = threading.Event()
        self.release = threading.Event()

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FileServer

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.server.hits[parts.path] += 1
        kind, _, name = parts.path.lstrip("/").partition("/")
        if kind == "files" and name in self.server.files:
            self._send(200, self.server.files[name])
        elif kind == "unsized" and name in self.server.files:
            # No Content-Length: the body ends when the connection closes.
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(self.server.files[name])
            self.close_connection = True
        elif kind == "status":
            self._send(int(name), b"status body")
        elif kind == "redirect":
            self._send(302, headers={"Location": parse_qs(parts.query)["to"][0]})
        elif kind == "slow":
            self.send_response(200)
            self.send_header("Content-Length", str(SLOW_TOTAL))
            self.end_headers()
            self.wfile.write(b"s" * SLOW_FIRST_CHUNK)
            self.wfile.flush()
            self.server.slow_started.set()
            self.server.release.wait(120)
            self.close_connection = True
        else:
            self._send(404, b"not found")

    def _receive(self) -> None:
        parts = urlsplit(self.path)
        self.server.hits[parts.path] += 1
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        kind, _, name = parts.path.lstrip("/").partition("/")
        if kind == "status":
            self._send(int(name), b"status body")
            return
        self.server.uploads[parts.path] = (self.command, body)
        self._send(201, b"stored")

    do_PUT = _receive
    do_POST = _receive


@pytest.fixture
def http_server() -> Iterator[FileServer]:
    """A fresh server per test, on a free port of 127.0.0.1."""
    server = FileServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(30)
