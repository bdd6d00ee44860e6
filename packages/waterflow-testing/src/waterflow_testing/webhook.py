"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every request, answers as told.

Standard library only. ``with webhook_receiver([500, 500]) as hook:`` answers 500 twice, then 200;
``hook.url`` is where to point the webhook, ``hook.requests`` what arrived.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def signed_with(self, secret: str) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-waterflow-signature-256", ""), expected)


@dataclass
class Receiver:
    """What the server answers: ``statuses`` first (one per request), then ``default``."""

    url: str
    statuses: list[int] = field(default_factory=list)
    default: int = 200
    location: str | None = None
    gate: threading.Event = field(default_factory=threading.Event)
    """Requests wait for this before answering (set by default)."""
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[dict[str, Any]]:
        """Events of the requests answered 2xx, in arrival order."""
        with self.lock:
            return [r.event for r in self.requests if 200 <= r.status < 300]


@contextmanager
def webhook_receiver(statuses: list[int] | None = None, *, location: str | None = None) -> Iterator[Receiver]:
    """Run a receiver on a free 127.0.0.1 port for the duration of the block."""
    receiver: Receiver | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert receiver is not None
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.gate.wait(30)
            with receiver.lock:
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status)
                )
            self.send_response(status)
            if receiver.location:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(
        f"http://127.0.0.1:{server.server_address[1]}/hook?token=abc", list(statuses or []), location=location
    )
    receiver.gate.set()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.gate.set()
        server.shutdown()
        server.server_close()
