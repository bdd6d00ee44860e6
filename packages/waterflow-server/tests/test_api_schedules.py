"""``/v1/schedules`` over real HTTP against a real Temporal dev server (ADR 0037).

The scheduled workflow has only a ``flow/sleep`` step (it runs inside the workflow), so no agent
is needed. Schedules here use a cron that fires once a year; ``trigger`` starts their runs.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

Api = Any  # the `api` fixture of conftest.py

WORKFLOW = """
name: nightly-report
inputs:
  region: {type: string, required: true}
  copies: {type: number, default: '1'}
jobs:
  report:
    runs-on: nowhere
    steps:
      - uses: flow/sleep
        with: {duration: 200ms}
"""
YEARLY = "0 3 1 1 *"


@pytest.fixture
def http(api: Api) -> Any:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        yield client


def create(http: httpx.Client, **body: Any) -> httpx.Response:
    document = {"workflow": WORKFLOW, "inputs": {"region": "eu", "copies": "3"}, "cron": YEARLY, **body}
    return http.post("/v1/schedules", json=document)


def new_id() -> str:
    return f"sched-{uuid.uuid4().hex[:10]}"


def wait_for(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_create_show_list_trigger_pause_delete(http: httpx.Client) -> None:
    schedule_id = new_id()
    created = create(http, id=schedule_id, note="quarterly numbers")
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/schedules/{schedule_id}"
    body = created.json()
    assert body["id"] == schedule_id and body["name"] == "nightly-report"
    assert body["cron"] == [YEARLY] and body["overlap"] == "skip" and body["timezone"] == "UTC"
    assert body["inputs"] == {"region": "eu", "copies": 3}  # typed once, at create time
    assert body["paused"] is False and body["note"] == "quarterly numbers"
    assert body["next_runs"] and body["next_runs"][0][5:10] == "01-01"

    listed = wait_for(
        lambda: [s for s in http.get("/v1/schedules").json()["schedules"] if s["id"] == schedule_id],
        "the schedule to be listed",
    )
    assert listed[0]["name"] == "nightly-report" and listed[0]["cron"] == [YEARLY]

    triggered = http.post(f"/v1/schedules/{schedule_id}/trigger")
    assert triggered.status_code == 202, triggered.text
    recent = wait_for(lambda: http.get(f"/v1/schedules/{schedule_id}").json()["recent_runs"], "the triggered run")
    run_id = recent[0]["id"]
    assert run_id.startswith(f"{schedule_id}-")
    run = wait_for(
        lambda: (found := http.get(f"/v1/workflows/{run_id}").json()).get("status") not in (None, "running") and found,
        "the run to finish",
    )
    assert run["status"] == "succeeded" and run["name"] == "nightly-report"
    assert run["inputs"] == {"region": "eu", "copies": 3}
    runs = wait_for(
        lambda: [
            r for r in http.get("/v1/workflows", params={"name": "nightly-report"}).json()["runs"] if r["id"] == run_id
        ],
        "the run in the run list",
    )
    assert runs[0]["status"] == "succeeded"

    paused = http.post(f"/v1/schedules/{schedule_id}/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert http.post(f"/v1/schedules/{schedule_id}/unpause").json()["paused"] is False

    assert http.delete(f"/v1/schedules/{schedule_id}").status_code == 204
    gone = http.get(f"/v1/schedules/{schedule_id}")
    assert gone.status_code == 404 and schedule_id in gone.json()["message"]
    assert http.get(f"/v1/workflows/{run_id}").json()["status"] == "succeeded"  # its runs stay


def test_interval_timezone_and_overlap_are_kept(http: httpx.Client) -> None:
    schedule_id = new_id()
    created = create(
        http, id=schedule_id, cron=None, interval="90m", timezone="Europe/Berlin", overlap="buffer-one", paused=True
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["interval_seconds"] == 5400 and body["cron"] == []
    assert body["timezone"] == "Europe/Berlin" and body["overlap"] == "buffer-one" and body["paused"] is True
    assert http.delete(f"/v1/schedules/{schedule_id}").status_code == 204


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"cron": "*/5 * * *"}, "cron[0]", "5 fields"),
        ({"cron": ["0 3 * * *", "61 * * * *"]}, "cron[1]", "minute field '61': 61 is out of range 0-59"),
        ({"cron": "0 3 * FOO *"}, "cron[0]", "month field"),
        ({"cron": "*/0 * * * *"}, "cron[0]", "step of 0"),
        ({"cron": "@sometimes"}, "cron[0]", "unknown alias"),
        ({"cron": None}, "cron", "cron expression, an interval, or both"),
        ({"interval": "0s"}, "interval", "greater than zero"),
        ({"interval": "soon"}, "interval", "invalid duration"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"timezone": "../../etc/passwd"}, "timezone", "unknown time zone"),
        ({"overlap": "terminate-other"}, "overlap", "must be one of skip"),
        ({"paused": "yes"}, "paused", "true or false"),
    ],
)
def test_bad_timing_is_422_naming_the_field(http: httpx.Client, change: dict[str, Any], path: str, words: str) -> None:
    response = create(http, id=new_id(), **change)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_schedule"
    assert body["errors"][0]["path"] == path
    assert words in body["message"]


def test_bad_workflow_inputs_and_requests(http: httpx.Client) -> None:
    missing = http.post("/v1/schedules", json={"workflow": WORKFLOW, "cron": YEARLY})
    assert missing.status_code == 422 and "region" in missing.text
    broken = http.post("/v1/schedules", json={"workflow": "name: x\njobs: {}\nbogus: 1\n", "cron": YEARLY})
    assert broken.status_code == 422 and broken.json()["code"] == "invalid_workflow"
    assert http.post("/v1/schedules", json={"cron": YEARLY}).status_code == 400
    assert http.post("/v1/schedules", json={"workflow": WORKFLOW, "cron": YEARLY, "when": 1}).status_code == 400
    assert create(http, id="bad id!").status_code == 400
    assert create(http, id="x" * 151).status_code == 400
    assert http.post("/v1/schedules", content=b"[1]", headers={"content-type": "application/json"}).status_code == 400
    for verb in ("pause", "unpause", "trigger"):
        assert http.post(f"/v1/schedules/{new_id()}/{verb}").status_code == 404
    assert http.delete(f"/v1/schedules/{new_id()}").status_code == 404


def test_an_id_in_use_is_409(http: httpx.Client) -> None:
    schedule_id = new_id()
    assert create(http, id=schedule_id).status_code == 201
    again = create(http, id=schedule_id)
    assert again.status_code == 409 and schedule_id in again.json()["message"]
    assert http.delete(f"/v1/schedules/{schedule_id}").status_code == 204


def test_trigger_runs_a_paused_schedule(http: httpx.Client) -> None:
    schedule_id = new_id()
    assert create(http, id=schedule_id, paused=True).status_code == 201
    assert http.post(f"/v1/schedules/{schedule_id}/trigger").status_code == 202
    recent = wait_for(lambda: http.get(f"/v1/schedules/{schedule_id}").json()["recent_runs"], "the triggered run")
    assert recent[0]["id"].startswith(f"{schedule_id}-")
    assert http.delete(f"/v1/schedules/{schedule_id}").status_code == 204
