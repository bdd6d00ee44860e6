"""Acceptance: the webhook receives every event of a run, signed, even from a receiver that fails first.

A real `waterflow server` (its interpreter worker, the webhook event handler configured through
environment variables as an operator would), a real agent, and a real HTTP receiver on
127.0.0.1 that answers 500 to the first two requests. A run of two steps (the second skipped)
must deliver run.started, step.started and step.finished of the first step, step.finished
(skipped) of the second and run.succeeded, each with a valid HMAC-SHA256 signature; the event
refused twice arrives on the third attempt with the same id and body.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from waterflow_sdk import Client
from waterflow_testing import eventually, unique_name
from waterflow_testing.devserver import free_port
from waterflow_testing.webhook import webhook_receiver

SECRET = "e2e-webhook-secret"
COMMON = ("id", "type", "workflow_id", "run_id", "name", "ts")
STEP = ("job", "instance", "step", "path", "uses", "step_name", "kind")


def _by_id(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """De-duplicated by id, as a receiver should (delivery is at-least-once)."""
    return {event["id"]: event for event in events}


def test_webhook_receives_every_event_of_a_run(start_server, start_agent) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("hooked")
    start_agent(unique_name("agent-hook"), [group])
    with webhook_receiver([500, 500]) as hook:
        server = start_server(
            env={
                "WATERFLOW_EVENT_HANDLERS": "webhook",
                "WATERFLOW_EVENT_WEBHOOK_URL": hook.url,
                "WATERFLOW_EVENT_WEBHOOK_SECRET": SECRET,
                "WATERFLOW_EVENT_WEBHOOK_BACKOFF": "0.2",
            }
        )
        workflow = textwrap.dedent(
            f"""
            name: webhook-e2e
            jobs:
              work:
                runs-on: {group}
                steps:
                  - id: one
                    name: first step
                    uses: exec/shell
                    with: {{command: 'true'}}
                  - id: two
                    if: false
                    uses: exec/shell
                    with: {{command: 'false'}}
            """
        )
        with Client(server.url) as client:
            run = client.wait(client.submit(workflow).id, timeout=180, poll=0.2)
        assert run.succeeded, run.error

        def mine() -> dict[str, dict[str, Any]]:
            return _by_id([e for e in hook.delivered() if e["workflow_id"] == run.id])

        events = asyncio.run(
            eventually(mine, lambda got: any(e["type"] == "run.succeeded" for e in got.values()), timeout=60)
        )
        assert not server.output.count(SECRET), "the secret reached the server's output"

    ordered = sorted(events.values(), key=lambda e: int(e["id"].rsplit("/", 1)[1]))
    kinds = [(e["type"], e.get("step"), e.get("status")) for e in ordered]
    assert kinds == [
        ("run.started", None, None),
        ("step.started", "one", None),
        ("step.finished", "one", "success"),
        ("step.finished", "two", "skipped"),
        ("run.succeeded", None, "succeeded"),
    ], kinds
    run_ids = {e["run_id"] for e in ordered}
    assert len(run_ids) == 1
    for event in ordered:
        assert all(key in event for key in COMMON), event
        assert event["id"].startswith(f"{run.id}/{next(iter(run_ids))}/")
        assert event["name"] == "webhook-e2e"
        assert event["ts"].endswith("Z")
        if event["type"].startswith("step."):
            assert all(key in event for key in STEP), event
            assert event["job"] == "work" and event["kind"] == "step" and event["instance"] is None
    finished = ordered[2]
    assert finished["agent"] and finished["error"] is None and finished["uses"] == "exec/shell"
    assert finished["step_name"] == "first step"
    assert ordered[-1]["error"] is None and ordered[-1]["started_at"] and ordered[-1]["finished_at"]

    # Every request, refused or not, was signed; the first event was refused twice, then taken.
    assert all(request.signed_with(SECRET) for request in hook.requests)
    first = [r for r in hook.requests if r.headers["x-waterflow-delivery"] == ordered[0]["id"]]
    assert [r.status for r in first] == [500, 500, 200]
    assert len({r.body for r in first}) == 1
    assert all(r.headers["x-waterflow-event"] == r.event["type"] for r in hook.requests)


def test_events_queued_when_the_server_is_killed_are_delivered_by_the_next_one(  # type: ignore[no-untyped-def]
    start_server, start_agent, tmp_path: Path
) -> None:
    """`kill -9` of a server whose receiver has taken nothing yet: a server on the same spool delivers it all."""
    group = unique_name("spooled")
    start_agent(unique_name("agent-spool"), [group])
    spool = tmp_path / "spool"
    with webhook_receiver() as hook:
        hook.gate.clear()  # the receiver answers nothing until the first server is dead
        env = {
            "WATERFLOW_EVENT_HANDLERS": "webhook",
            "WATERFLOW_EVENT_WEBHOOK_URL": hook.url,
            "WATERFLOW_EVENT_WEBHOOK_SECRET": SECRET,
            "WATERFLOW_EVENT_WEBHOOK_TIMEOUT": "120",
        }
        first = start_server(env=env, args=["--event-spool", str(spool)])
        workflow = textwrap.dedent(
            f"""
            name: spooled
            jobs:
              work:
                runs-on: {group}
                steps:
                  - id: one
                    uses: exec/shell
                    with: {{command: 'true'}}
            """
        )
        with Client(first.url) as client:
            run = client.wait(client.submit(workflow).id, timeout=180, poll=0.2)
        assert run.succeeded, run.error
        first.kill()
        hook.gate.set()
        start_server(env=env, args=["--event-spool", str(spool)])
        events = asyncio.run(
            eventually(
                lambda: _by_id([e for e in hook.delivered() if e["workflow_id"] == run.id]),
                lambda got: len(got) == 4,
                timeout=60,
            )
        )
    ordered = sorted(events.values(), key=lambda e: int(e["id"].rsplit("/", 1)[1]))
    assert [(e["type"], e.get("step")) for e in ordered] == [
        ("run.started", None),
        ("step.started", "one"),
        ("step.finished", "one"),
        ("run.succeeded", None),
    ]
    assert all(request.signed_with(SECRET) for request in hook.requests)


ANCESTORS = """
name: dev-webhook
inputs:
  dir: {type: string, required: true}
jobs:
  read:
    runs-on: local
    steps:
      - id: ancestors
        uses: exec/shell
        env: {DIR: $<< inputs.dir >>}
        with:
          command: |
            pid=$$
            while [ "$pid" -gt 1 ]; do
              echo "$pid" >> "$DIR/pids"
              cat /proc/$pid/environ 2>/dev/null | tr '\\0' '\\n'
              pid=$(awk '/^PPid:/ {print $2}' /proc/$pid/status)
            done > "$DIR/ancestors"
            env > "$DIR/env"
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_dev_delivers_events_and_keeps_the_webhook_secret_from_its_agents_steps(tmp_path: Path) -> None:
    """`waterflow dev` with a webhook: events arrive signed; no step can read the secret from an ancestor."""
    secret = f"dev-hook-{os.getpid()}-{time.monotonic_ns()}"
    out = tmp_path / "seen"
    out.mkdir()
    log = tmp_path / "dev.log"
    port = free_port()
    with webhook_receiver() as hook:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "WATERFLOW_EVENT_HANDLERS": "webhook",
            "WATERFLOW_EVENT_WEBHOOK_URL": hook.url,
            "WATERFLOW_EVENT_WEBHOOK_SECRET": secret,
        }
        env.pop("WATERFLOW_TEMPORAL_ADDRESS", None)
        command = [
            sys.executable, "-m", "waterflow_sdk", "dev", "--data-dir", str(tmp_path / "data"),
            "--port", str(port), "--temporal-port", str(free_port()), "--headless",
        ]  # fmt: skip
        with log.open("ab") as output:
            process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        try:
            deadline = time.monotonic() + 180
            while not re.search(r"^ready\b", log.read_text(errors="replace"), re.M):
                assert process.poll() is None, f"waterflow dev exited:\n{log.read_text(errors='replace')}"
                assert time.monotonic() < deadline, f"waterflow dev not ready:\n{log.read_text(errors='replace')}"
                time.sleep(0.1)
            with Client(f"http://127.0.0.1:{port}") as client:
                run = client.wait(client.submit(ANCESTORS, inputs={"dir": str(out)}).id, timeout=180, poll=0.2)
            assert run.succeeded, run.error
            events = asyncio.run(
                eventually(
                    lambda: [e for e in hook.delivered() if e["workflow_id"] == run.id],
                    lambda got: any(e["type"] == "run.succeeded" for e in got),
                    timeout=60,
                )
            )
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(90)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    assert {e["type"] for e in events} >= {"run.started", "step.started", "step.finished", "run.succeeded"}
    assert all(request.signed_with(secret) for request in hook.requests)
    assert process.pid in [int(line) for line in (out / "pids").read_text().split()]
    for name in ("ancestors", "env"):
        seen = (out / name).read_text()
        assert "PATH=" in seen
        assert secret not in seen and "WATERFLOW_EVENT_WEBHOOK" not in seen, name
    assert secret not in log.read_text(errors="replace")
