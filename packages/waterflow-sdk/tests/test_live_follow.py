"""The ``--watch`` loop against a scripted Waterflow API on 127.0.0.1: when it reads the run, how
it follows again after the server ends a stream, ``--timeout``, and a stream error.

A real HTTP server in a thread plays the server's side of the protocol (the follow stream's
server-sent events and ``GET /v1/workflows/{id}``), so cases a real run cannot be made to produce
on demand (a stream that expires, one that stalls) are played exactly; the e2e tests
(``tests/test_e2e_live_view.py``) cover the loop against the real server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from waterflow_sdk import Client, WaterflowAPIError, WaterflowSDKError
from waterflow_sdk.live import PlainView, follow

pytestmark = pytest.mark.unit


def run(status: str, step_status: str, **step: Any) -> dict[str, Any]:
    steps = [{"id": "s", "status": step_status, **step}]
    return {"id": "r", "status": status, "jobs": [{"id": "job", "status": status, "steps": steps}]}


RUNNING = run("running", "running", started_at="2026-01-01T00:00:00Z")
DONE = run("succeeded", "success", agent="a1", started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:00:02Z")


@dataclass
class Send:
    """One stream event; ``then`` is the run the reads return from now on."""

    event: str
    data: dict[str, Any]
    then: dict[str, Any] | None = None


@dataclass
class Quiet:
    """Keep the stream open ``seconds`` with keep-alive comments only."""

    seconds: float


@dataclass
class Script:
    streams: list[list[Send | Quiet]]
    run: dict[str, Any] = field(default_factory=lambda: run("running", "pending"))
    reads: int = 0
    opened: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


def serve(script: Script) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/v1/workflows/r":
                script.reads += 1
                body = json.dumps(script.run).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            assert self.path == "/v1/workflows/r/logs?follow=true", self.path
            items = script.streams[script.opened]
            script.opened += 1
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for item in items:
                if isinstance(item, Quiet):
                    until = time.monotonic() + item.seconds
                    while time.monotonic() < until and not script.stop.is_set():
                        self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                        time.sleep(0.1)
                    continue
                if item.then is not None:
                    script.run = item.then
                self.wfile.write(f"event: {item.event}\ndata: {json.dumps(item.data)}\n\n".encode())
                self.wfile.flush()
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def api() -> Iterator[Any]:
    servers: list[tuple[ThreadingHTTPServer, Script]] = []

    def start(script: Script) -> Client:
        server = serve(script)
        servers.append((server, script))
        return Client(f"http://127.0.0.1:{server.server_address[1]}")

    yield start
    for server, script in servers:
        script.stop.set()
        server.shutdown()
        server.server_close()


def log(line: str) -> Send:
    return Send("log", {"kind": "log", "step": "job/s", "line": line})


def step(status: str, then: dict[str, Any]) -> Send:
    return Send("step", {"kind": "step", "step": "job/s", "status": status, "line": status}, then)


END = Send("end", {"id": "r", "status": "succeeded"}, DONE)


def test_reads_the_run_on_state_changes_only_and_follows_again_after_the_stream_expires(api: Any) -> None:
    expired = Send("error", {"code": "stream_expired", "message": "follow streams last at most 1 s"})
    script = Script(
        [
            [step("running", RUNNING), log("one"), Quiet(1.6), log("two"), expired],
            [log("two"), log("three"), step("success", DONE), END],
        ]
    )
    lines: list[str] = []
    with api(script) as client:
        final = follow(client, "r", PlainView(lines.append), timeout=60, reconnect_pause=0)
    assert final.status == "succeeded"
    assert lines == [
        "[job/s] running",
        "[job/s] | one",
        "[job/s] | two",
        "(the server closed the stream (follow streams last at most 1 s); following run r again "
        "(recent lines may repeat))",
        "[job/s] | two",
        "[job/s] | three",
        "[job/s] succeeded on a1 in 2.0s",
    ]
    assert script.opened == 2
    # First read, one per state change, one per stream end: none while the stream was quiet.
    assert script.reads <= 5, script.reads


def test_a_finished_run_is_shown_from_one_stream(api: Any) -> None:
    script = Script([[log("one"), step("success", DONE), END]], run=DONE)
    lines: list[str] = []
    with api(script) as client:
        assert follow(client, "r", PlainView(lines.append), timeout=None).succeeded
    assert lines == ["[job/s] | one", "[job/s] succeeded on a1 in 2.0s"]
    assert script.opened == 1


def test_timeout_gives_up_while_the_stream_is_quiet(api: Any) -> None:
    script = Script([[step("running", RUNNING), Quiet(30)]])
    lines: list[str] = []
    gave_up = r"run r still running after 0.5s \(it goes on\)"
    with api(script) as client, pytest.raises(WaterflowSDKError, match=gave_up):
        follow(client, "r", PlainView(lines.append), timeout=0.5)
    assert lines == ["[job/s] running"]


def test_a_stream_error_is_raised(api: Any) -> None:
    script = Script([[step("running", RUNNING), Send("error", {"code": "unavailable", "message": "Temporal is down"})]])
    with api(script) as client, pytest.raises(WaterflowAPIError, match="Temporal is down"):
        follow(client, "r", PlainView(lambda line: None), timeout=None)


def test_the_plain_view_prints_the_matrix_once_at_the_end(api: Any) -> None:
    row = {"instance": "web-1", "status": "ok", "cells": ["ok"]}
    matrix = [{"job": "job", "steps": ["s"], "rows": [row]}]
    done = {**DONE, "matrix": matrix}
    script = Script([[log("one"), step("success", done), Send("end", {}, done)]], run=done)
    lines: list[str] = []
    with api(script) as client:
        assert follow(client, "r", PlainView(lines.append), timeout=60).succeeded
    assert lines[:3] == ["[job/s] | one", "[job/s] succeeded on a1 in 2.0s", "  matrix of job job:"]
    assert sum("matrix of job" in line for line in lines) == 1  # once, though every read had it
    assert any(line.split() == ["web-1", "ok", "ok"] for line in lines[3:]), lines
