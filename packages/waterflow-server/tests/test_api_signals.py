"""``POST /v1/workflows/{id}/signals/{name}`` over real HTTP: 202, 400, 403, 404, 409, 422.

Runs wait at a ``flow/approval`` gate (a workflow-side step: no agent is needed). Without tokens
the shared in-process API serves; the approver tests start a ``waterflow server`` with a token
file, since the token's name is the identity a gate's ``approvers`` list.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from waterflow_sdk import Client
from waterflow_sdk.errors import WaterflowAPIError
from waterflow_testing.server import StartServer

Api = Any  # the `api` fixture of conftest.py
ALICE = "alice-" + "a" * 26
BOB = "bob-" + "b" * 28
READER = "ro-" + "r" * 29


def gate_workflow(approvers: list[str] | None = None) -> str:
    listed = f"approvers: [{', '.join(approvers)}]" if approvers else ""
    return f"""
name: gated
jobs:
  j:
    runs-on: nowhere
    steps:
      - id: release
        uses: flow/approval
        with:
          message: release?
          {listed}
          inputs:
            ticket: {{type: string, required: true}}
            replicas: {{type: number, default: '1'}}
"""


def submit(http: httpx.Client | Any, text: str, headers: dict[str, str] | None = None) -> str:
    run_id = f"gate-{uuid.uuid4().hex[:10]}"
    response = http.post("/v1/workflows", json={"workflow": text, "id": run_id}, headers=headers or {})
    assert response.status_code == 201, response.text
    return run_id


def wait_gate(http: httpx.Client, run_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    for _ in range(300):
        run = http.get(f"/v1/workflows/{run_id}", headers=headers or {}).json()
        steps = [s for job in run["jobs"] for s in job["steps"] if s.get("waiting")]
        if steps:
            return steps[0]
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never waited at its gate")


def wait_status(http: httpx.Client, run_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    for _ in range(300):
        run = http.get(f"/v1/workflows/{run_id}", headers=headers or {}).json()
        if run["status"] != "running":
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


@pytest.fixture
def http(api: Api) -> Any:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        yield client


def test_a_signal_is_checked_then_delivered(http: httpx.Client) -> None:
    run_id = submit(http, gate_workflow())
    step = wait_gate(http, run_id)
    assert step["waiting"]["signal"] == "release" and step["waiting"]["message"] == "release?"
    url = f"/v1/workflows/{run_id}/signals/release"

    # 404, 409 (another signal), 422 (missing, mistyped, unknown field), 400 (bad bodies).
    assert http.post("/v1/workflows/nope-123/signals/release", json={}).status_code == 404
    wrong = http.post(f"/v1/workflows/{run_id}/signals/deploy", json={"data": {"ticket": "T-1"}})
    assert wrong.status_code == 409, wrong.text
    assert wrong.json()["message"] == (
        f"run '{run_id}' is not waiting for signal 'deploy'; it waits for: 'release' (step j/release)"
    )
    bad = http.post(url, json={"data": {"replicas": "many", "extra": 1}})
    assert bad.status_code == 422, bad.text
    assert [(e["path"], e["message"]) for e in bad.json()["errors"]] == [
        ("data.extra", "unknown field (this gate's fields: ticket, replicas) (gate j/release)"),
        ("data.ticket", "required to approve (gate j/release)"),
        ("data.replicas", "expected a number, got 'many' (gate j/release)"),
    ]
    assert http.post(url, json={"data": [1]}).json()["errors"][0]["path"] == "data"
    assert http.post(url, json={"decision": "maybe"}).status_code == 422
    assert http.post(url, json={"data": {}, "by": "root"}).status_code == 400  # `by` is the server's to set
    assert http.post(url, content=b"[1]", headers={"content-type": "application/json"}).status_code == 400
    assert http.post(f"/v1/workflows/{run_id}/signals/..bad", json={}).status_code == 400
    huge = http.post(url, json={"data": {"ticket": "x" * 70_000}})
    assert huge.status_code == 413
    assert wait_gate(http, run_id)["waiting"]["refused"] == []  # nothing reached the run

    accepted = http.post(url, json={"data": {"ticket": "T-1"}})
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["steps"] == ["j/release"] and body["by"] == "" and body["decision"] == "approve"
    run = wait_status(http, run_id)
    assert run["status"] == "succeeded", run
    outputs = run["jobs"][0]["steps"][0]["outputs"]
    assert outputs["decision"] == "approved" and outputs["data"] == {"ticket": "T-1", "replicas": 1}

    late = http.post(url, json={"data": {"ticket": "T-1"}})
    assert late.status_code == 409 and "already finished (succeeded)" in late.json()["message"]


def test_a_rejection_fails_the_run(http: httpx.Client) -> None:
    run_id = submit(http, gate_workflow())
    wait_gate(http, run_id)
    response = http.post(f"/v1/workflows/{run_id}/signals/release", json={"decision": "reject"})
    assert response.status_code == 202, response.text
    run = wait_status(http, run_id)
    assert run["status"] == "failed"
    assert run["error"] == "step j/release was rejected by a caller without an API token (signal release)"


def test_approvers_need_api_tokens(http: httpx.Client) -> None:
    run_id = submit(http, gate_workflow(["alice"]))
    wait_gate(http, run_id)
    refused = http.post(f"/v1/workflows/{run_id}/signals/release", json={"data": {"ticket": "T"}})
    assert refused.status_code == 403
    assert "approvers are API token names: this server has no API tokens configured" in refused.json()["message"]
    http.delete(f"/v1/workflows/{run_id}")


def test_only_approvers_may_answer(start_server: StartServer, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"alice operator {ALICE}\nbob operator {BOB}\nviewer read {READER}\n")
    tokens.chmod(0o600)
    server = start_server(env={"WATERFLOW_API_TOKEN_FILE": str(tokens)})
    as_alice = {"authorization": f"Bearer {ALICE}"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        run_id = submit(http, gate_workflow(["alice"]), as_alice)
        step = wait_gate(http, run_id, as_alice)
        assert step["waiting"]["approvers"] == ["alice"]
        url = f"/v1/workflows/{run_id}/signals/release"
        body = {"data": {"ticket": "T-9"}}
        assert http.post(url, json=body).status_code == 401
        assert http.post(url, json=body, headers={"authorization": f"Bearer {READER}"}).status_code == 403
        bob = http.post(url, json=body, headers={"authorization": f"Bearer {BOB}"})
        assert bob.status_code == 403 and bob.json()["code"] == "not_an_approver"
        assert bob.json()["message"] == "token 'bob' is not among the approvers of gate j/release (alice)"

    # The SDK: same answers as exceptions, then the approval.
    with Client(server.url, token=BOB) as client, pytest.raises(WaterflowAPIError) as caught:
        client.signal(run_id, "release", {"ticket": "T-9"})
    assert caught.value.status == 403
    with Client(server.url, token=ALICE) as client:
        accepted = client.signal(run_id, "release", {"ticket": "T-9"})
        assert accepted.by == "alice" and accepted.steps == ["j/release"]
        run = client.wait(run_id, timeout=60)
    assert run.status == "succeeded"
    step_outputs = run.jobs[0].steps[0].outputs
    assert step_outputs["by"] == "alice" and step_outputs["approved"] is True


def test_the_endpoint_is_documented(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    operation = spec["paths"]["/v1/workflows/{id}/signals/{name}"]["post"]
    assert {"202", "400", "403", "404", "409", "422"} <= set(operation["responses"])
    assert "application/json" in operation["requestBody"]["content"]


def test_the_cli_reads_data_and_rejects(http: httpx.Client, api: Api, tmp_path: Path) -> None:
    def waterflow(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "WATERFLOW_SERVER": api.url}
        env.pop("WATERFLOW_API_TOKEN", None)
        command = [sys.executable, "-m", "waterflow_sdk", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)

    run_id = submit(http, gate_workflow())
    wait_gate(http, run_id)
    for data, message in [
        ("[1]", "--data must be a JSON object"),
        ("{nope", "--data is not valid JSON"),
        (f"@{tmp_path / 'missing.json'}", "cannot read"),
    ]:
        bad = waterflow("signal", run_id, "release", "--data", data)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    mistyped = waterflow("signal", run_id, "release", "--data", '{"replicas": "x"}')
    assert mistyped.returncode == 1, mistyped.stderr
    assert "data.replicas: expected a number, got 'x' (gate j/release)" in mistyped.stderr
    assert "0:0" not in mistyped.stderr
    rejected = waterflow("signal", run_id, "release", "--reject", "--output", "json")
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout)["decision"] == "reject"
    assert wait_status(http, run_id)["status"] == "failed"
