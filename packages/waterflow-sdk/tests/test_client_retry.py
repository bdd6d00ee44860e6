"""Retries and resumed log streams, against a real HTTP server on 127.0.0.1 that misbehaves on cue.

The server answers each request by the next step of a script: ``drop`` closes the connection
without an answer (the answer is lost), ``(status, body)`` answers, ``("sse", text, keep)``
streams server-sent events and then closes (``keep=False``: before the run's ``end``).
Connection refusals use a port nothing listens on.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import pytest

from waterflow_sdk import AsyncClient, Client, Retry, WaterflowAPIError, WaterflowConnectionError
from waterflow_testing.devserver import free_port

pytestmark = pytest.mark.unit

FAST = Retry(attempts=3, backoff=0.01, max_backoff=0.02)


class Scripted:
    """A real HTTP server whose answers follow ``script``; ``seen`` lists ``(method, path)`` received."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.seen: list[tuple[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.seen.append((self.command, self.path))
                step = owner.script.pop(0) if owner.script else (500, {"code": "script_over", "message": "no more"})
                if step == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if step[0] == "sse":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    self.wfile.write(step[1].encode())
                    self.wfile.flush()
                    self.close_connection = True
                    return
                status, body = step
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = handle_one

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self._thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.shutdown()
        self.http.server_close()


RUN = {"id": "r1", "run_id": "x", "name": "n", "status": "succeeded"}
REF = {"id": "deploy-1", "run_id": "x", "status_url": "/v1/workflows/deploy-1", "created": True}
CONFLICT = {"code": "conflict", "message": "already running", "id": "deploy-1", "run_id": "x", "status_url": "/s"}


def sse(*events: tuple[str, dict[str, Any]]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def log(step: str, line: str) -> tuple[str, dict[str, Any]]:
    return "log", {"kind": "log", "step": step, "line": line}


def event(step: str, status: str) -> tuple[str, dict[str, Any]]:
    return "step", {"kind": "step", "step": step, "status": status, "line": status}


END = ("end", {"status": "succeeded"})


def test_a_read_whose_answer_was_lost_is_sent_again() -> None:
    with Scripted(["drop", "drop", (200, RUN)]) as server, Client(server.url, retry=FAST) as client:
        assert client.get("r1").status == "succeeded"
        assert server.seen == [("GET", "/v1/workflows/r1")] * 3


def test_retries_stop_after_the_last_attempt() -> None:
    with Scripted(["drop"] * 3) as server, Client(server.url, retry=FAST) as client:
        with pytest.raises(WaterflowConnectionError):
            client.nodes()
        assert len(server.seen) == 3


def test_a_submit_with_an_id_is_resent_and_a_conflict_then_means_the_lost_try_started_it() -> None:
    with Scripted(["drop", (409, CONFLICT)]) as server, Client(server.url, retry=FAST) as client:
        ref = client.submit("name: x\n", id="deploy-1")
        assert ref.id == "deploy-1" and ref.run_id == "x" and ref.created
        assert len(server.seen) == 2
    # Without a retry a 409 is what it says: someone else's run holds the id.
    with Scripted([(409, CONFLICT)]) as server, Client(server.url, retry=FAST) as client:
        with pytest.raises(WaterflowAPIError) as info:
            client.submit("name: x\n", id="deploy-1")
        assert info.value.status == 409


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.submit("name: x\n"),  # no id: a second try could start a second run
        lambda c: c.cancel("r1"),
        lambda c: c.signal("r1", "go"),
    ],
    ids=["submit-without-id", "cancel", "signal"],
)
def test_a_request_that_may_have_acted_is_not_resent(call: Any) -> None:
    with Scripted(["drop", (200, REF)]) as server, Client(server.url, retry=FAST) as client:
        with pytest.raises(WaterflowConnectionError):
            call(client)
        assert len(server.seen) == 1


def test_error_answers_are_not_retried() -> None:
    with Scripted([(503, {"code": "unavailable", "message": "Temporal is down"})]) as server:
        with Client(server.url, retry=FAST) as client, pytest.raises(WaterflowAPIError) as info:
            client.get("r1")
    assert info.value.status == 503 and len(server.seen) == 1


def test_a_refused_connection_is_retried_even_for_a_signal() -> None:
    port = free_port()  # nothing listens: every try is refused, none reached a server
    with Client(f"http://127.0.0.1:{port}", retry=FAST) as client:
        with pytest.raises(WaterflowConnectionError) as info:
            client.signal("r1", "go")
    assert "connection refused" in str(info.value)


def test_no_retry_policy_sends_once() -> None:
    with Scripted(["drop", (200, RUN)]) as server, Client(server.url, retry=Retry(attempts=1)) as client:
        with pytest.raises(WaterflowConnectionError):
            client.get("r1")
        assert len(server.seen) == 1


def test_follow_logs_resumes_a_broken_stream_without_repeating_entries() -> None:
    first = sse(event("a/one", "running"), log("a/one", "l1"), log("a/one", "l1"), log("a/one", "l2"))
    # The server starts again from the run's first entry; the step printed more meanwhile.
    second = sse(
        event("a/one", "running"),
        log("a/one", "l1"),
        log("a/one", "l1"),
        log("a/one", "l2"),
        log("a/one", "l1"),
        event("a/one", "success"),
        log("b/two", "l1"),
        END,
    )
    with Scripted([("sse", first), ("sse", second)]) as server, Client(server.url, retry=FAST) as client:
        got = [str(entry) for entry in client.follow_logs("r1")]
    assert got == [
        "[a/one] running",
        "[a/one] l1",
        "[a/one] l1",
        "[a/one] l2",
        "[a/one] l1",
        "[a/one] success",
        "[b/two] l1",
    ]
    assert server.seen == [("GET", "/v1/workflows/r1/logs?follow=true")] * 2


def test_an_expired_stream_is_reopened_and_a_failing_server_ends_the_iteration() -> None:
    expired = sse(log("a/one", "l1"), ("error", {"code": "stream_expired", "message": "an hour passed"}))
    script = [("sse", expired), ("sse", sse(log("a/one", "l1"), log("a/one", "l2"), END))]
    with Scripted(script) as server, Client(server.url, retry=FAST) as client:
        assert [e.line for e in client.follow_logs("r1")] == ["l1", "l2"]
    # A stream that keeps closing early with nothing new: given up after the retries.
    with Scripted([("sse", sse(log("a/one", "l1")))] * 3) as server, Client(server.url, retry=FAST) as client:
        lines: list[str] = []
        with pytest.raises(WaterflowConnectionError):
            lines.extend(e.line for e in client.follow_logs("r1"))
        assert lines == ["l1"] and len(server.seen) == 3
    with Scripted([(404, {"code": "not_found", "message": "no such run"})]) as server:
        with Client(server.url, retry=FAST) as client, pytest.raises(WaterflowAPIError) as info:
            list(client.follow_logs("nope"))
    assert info.value.code == "not_found"


async def test_the_async_client_shares_the_rules() -> None:
    first = sse(log("a/one", "l1"))
    script = ["drop", (200, RUN), ("sse", first), ("sse", sse(log("a/one", "l1"), log("a/one", "l2"), END))]
    with Scripted(script) as server:
        async with AsyncClient(server.url, retry=FAST) as client:
            assert (await client.get("r1")).status == "succeeded"
            assert [e.line async for e in client.follow_logs("r1")] == ["l1", "l2"]
    with Scripted(["drop", (200, REF)]) as server:
        async with AsyncClient(server.url, retry=FAST) as client:
            with pytest.raises(WaterflowConnectionError):
                await client.cancel("r1")
        assert len(server.seen) == 1


def _pages() -> Iterator[Any]:
    yield (200, {"runs": [RUN], "next_page_token": "t2"})
    yield (200, {"runs": [{**RUN, "id": "r2"}], "next_page_token": None})


def test_iter_runs_reads_every_page_with_the_filters() -> None:
    from datetime import UTC, date, datetime

    with Scripted(list(_pages())) as server, Client(server.url, retry=FAST) as client:
        since = datetime(2026, 11, 30, 8, tzinfo=UTC)
        ids = [run.id for run in client.iter_runs("failed", since=since, until=date(2026, 12, 1), page_size=1)]
    assert ids == ["r1", "r2"]
    first, second = (path for _, path in server.seen)
    assert "status=failed" in first and "since=2026-11-30T08%3A00%3A00%2B00%3A00" in first
    assert "until=2026-12-01" in first and "page_token=t2" in second
    with Client("http://127.0.0.1:1") as client, pytest.raises(ValueError, match="timezone-aware"):
        client.list_runs(since=datetime(2026, 1, 1))  # a naive datetime: the mistake under test
