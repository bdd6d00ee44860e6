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
import textwrap
from typing import Any

from waterflow_sdk import Client
from waterflow_testing import eventually, unique_name
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
