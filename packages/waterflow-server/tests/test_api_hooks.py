"""Inbound webhooks: ``POST /v1/hooks/{name}`` on a real ``waterflow server --hooks`` (ADR 0037).

The server also has an API token, so the tests show the hook path needs none (its HMAC is the
credential) while everything else still does. The hooked workflow has only a ``flow/sleep`` step
(it runs inside the workflow): no agent is needed.
"""

from __future__ import annotations

import hashlib
import hmac
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

from waterflow_server.hooks_config import HooksConfigError, load_hooks
from waterflow_testing.server import StartServer

SECRET = "s3cret-" + "k" * 25
TOKEN = "tok-" + "t" * 28
WORKFLOW = """
name: on-push
inputs:
  ref: {type: string, required: true}
  commits: {type: number, default: '0'}
  forced: {type: boolean, default: 'false'}
  pusher: {type: string, default: nobody}
jobs:
  build:
    runs-on: nowhere
    steps:
      - uses: flow/sleep
        with: {duration: 100ms}
"""
HOOKS = """
hooks:
  push:
    workflow: on-push.yaml
    secret-file: push.secret
    inputs:
      ref: $<< payload.ref >>
      commits: $<< payload.size >>
      forced: $<< payload.forced >>
      pusher: $<< payload.pusher.name >>@$<< headers.x-sender-host >>
    id: push-$<< headers.x-github-delivery >>
  anonymous:
    workflow: on-push.yaml
    secret-file: push.secret
    inputs:
      ref: $<< payload.ref >>
"""


def write_hooks(directory: Path, hooks: str = HOOKS, secret: str = SECRET, mode: int = 0o600) -> Path:
    (directory / "on-push.yaml").write_text(WORKFLOW)
    secret_file = directory / "push.secret"
    secret_file.write_text(secret + "\n")
    secret_file.chmod(mode)
    path = directory / "hooks.yaml"
    path.write_text(hooks)
    return path


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    http: httpx.Client,
    name: str,
    payload: Any,
    *,
    delivery: str | None = None,
    header: str = "X-Hub-Signature-256",
    signature: str | None = None,
) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json", "x-sender-host": "ci.example"}
    if delivery is not None:
        headers["x-github-delivery"] = delivery
    if signature != "":
        headers[header] = signature or sign(body)
    return http.post(f"/v1/hooks/{name}", content=body, headers=headers)


def wait_finished(http: httpx.Client, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = http.get(f"/v1/workflows/{run_id}").json()
        if run.get("status") not in (None, "running"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


@pytest.fixture
def server(start_server: StartServer, tmp_path: Path) -> Any:
    return start_server(token=TOKEN, args=["--hooks", str(write_hooks(tmp_path))]).wait_ready()


@pytest.fixture
def http(server: Any) -> Any:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def authed(server: Any) -> Any:
    with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def test_a_signed_delivery_starts_a_run_with_the_mapped_inputs(http: httpx.Client, authed: httpx.Client) -> None:
    delivery = uuid.uuid4().hex
    payload = {"ref": "refs/heads/main", "size": 3, "forced": True, "pusher": {"name": "ada"}}
    response = deliver(http, "push", payload, delivery=delivery)
    assert response.status_code == 202, response.text
    ref = response.json()
    assert ref["id"] == f"push-{delivery}" and ref["created"] is True
    run = wait_finished(authed, ref["id"])
    assert run["status"] == "succeeded" and run["name"] == "on-push"
    assert run["inputs"] == {"ref": "refs/heads/main", "commits": 3, "forced": True, "pusher": "ada@ci.example"}

    # A redelivery (same delivery id) starts no second run, running or finished.
    again = deliver(http, "push", payload, delivery=delivery)
    assert again.status_code == 200 and again.json()["id"] == ref["id"] and again.json()["created"] is False
    runs = authed.get("/v1/workflows", params={"name": "on-push", "page_size": 500}).json()["runs"]
    assert [r["id"] for r in runs].count(ref["id"]) == 1

    # Waterflow's own header works as GitHub's does; without an id template each delivery is a new run.
    own = deliver(http, "anonymous", {"ref": "v1"}, header="X-Waterflow-Signature-256")
    assert own.status_code == 202, own.text
    assert wait_finished(authed, own.json()["id"])["inputs"]["ref"] == "v1"


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=" + "0" * 64, "sha1=abc", "sha256=", "sha256=" + "zz" * 32],
    ids=["missing", "wrong", "sha1", "empty", "not-hex"],
)
def test_a_bad_signature_is_401_and_starts_nothing(http: httpx.Client, authed: httpx.Client, signature: str) -> None:
    delivery = uuid.uuid4().hex
    response = deliver(http, "push", {"ref": "main"}, delivery=delivery, signature=signature)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "bad_signature"
    assert authed.get(f"/v1/workflows/push-{delivery}").status_code == 404


def test_signed_with_another_secret_or_for_another_body(http: httpx.Client, authed: httpx.Client) -> None:
    delivery = uuid.uuid4().hex
    wrong_key = deliver(http, "push", {"ref": "main"}, delivery=delivery, signature=sign(b'{"ref": "main"}', "x" * 32))
    assert wrong_key.status_code == 401
    other_body = deliver(http, "push", {"ref": "evil"}, delivery=delivery, signature=sign(b'{"ref": "main"}'))
    assert other_body.status_code == 401
    assert authed.get(f"/v1/workflows/push-{delivery}").status_code == 404


def test_mapping_failures_are_422_naming_the_input(http: httpx.Client) -> None:
    missing = deliver(http, "push", {"size": 1}, delivery=uuid.uuid4().hex)
    assert missing.status_code == 422, missing.text
    assert "ref" in missing.json()["message"]
    mistyped = deliver(http, "push", {"ref": "main", "size": "many"}, delivery=uuid.uuid4().hex)
    assert mistyped.status_code == 422 and "commits" in mistyped.json()["message"]
    no_delivery = deliver(http, "push", {"ref": "main"})  # the id template needs the delivery header
    assert no_delivery.status_code == 422 and no_delivery.json()["errors"][0]["path"] == "id"
    bad_id = deliver(http, "push", {"ref": "main"}, delivery="a b/c")
    assert bad_id.status_code == 422 and bad_id.json()["errors"][0]["path"] == "id"


def test_unknown_hooks_bodies_and_the_token_guard(http: httpx.Client, server: Any) -> None:
    assert deliver(http, "nope", {"ref": "main"}).status_code == 404
    not_json = http.post(
        "/v1/hooks/push", content=b"{", headers={"content-type": "application/json", "x-hub-signature-256": sign(b"{")}
    )
    assert not_json.status_code == 400
    form = http.post("/v1/hooks/push", content=b"a=b", headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415
    big = b"[" + b"0," * (600 * 1024) + b"0]"
    too_large = http.post(
        "/v1/hooks/push", content=big, headers={"content-type": "application/json", "x-hub-signature-256": sign(big)}
    )
    assert too_large.status_code == 413
    # Only the hook path is exempt from the bearer token.
    assert http.get("/v1/workflows").status_code == 401
    assert http.post("/v1/hooks/push%2F..%2F..%2Fworkflows", json={"workflow": WORKFLOW}).status_code == 401
    assert http.post("/v1/hooks/push/../../workflows", json={"workflow": WORKFLOW}).status_code in (401, 404)


@pytest.mark.parametrize(
    ("hooks", "words"),
    [
        (HOOKS.replace("secret-file: push.secret", f"secret: {SECRET}", 1), "never written in the hooks file"),
        (HOOKS.replace("ref: $<< payload.ref >>", "branch: $<< payload.ref >>", 1), "has no input 'branch'"),
        (HOOKS.replace("$<< payload.size >>", "$<< secrets.token >>", 1), "payload and headers"),
        (HOOKS.replace("on-push.yaml", "missing.yaml", 1), "cannot read"),
        (HOOKS.replace("push:", "bad name:", 1), "hook name"),
        (HOOKS.replace("    id: push", "    run-id: push", 1), "unknown key 'run-id'"),
        ("hooks: []\n", "mapping of hook name"),
    ],
)
def test_hooks_file_mistakes_name_the_place(tmp_path: Path, hooks: str, words: str) -> None:
    with pytest.raises(HooksConfigError) as caught:
        load_hooks(write_hooks(tmp_path, hooks))
    assert words in str(caught.value) and "hooks.yaml:" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_secret_file_must_be_private_and_long(tmp_path: Path) -> None:
    with pytest.raises(HooksConfigError, match="readable by other users"):
        load_hooks(write_hooks(tmp_path, mode=0o644))
    with pytest.raises(HooksConfigError, match="shorter than 16"):
        load_hooks(write_hooks(tmp_path, secret="short"))
    hooks = load_hooks(write_hooks(tmp_path))
    assert set(hooks) == {"push", "anonymous"} and SECRET not in repr(hooks)


def test_the_server_refuses_to_start_with_a_bad_hooks_file(tmp_path: Path) -> None:
    path = write_hooks(tmp_path, HOOKS.replace("on-push.yaml", "missing.yaml", 1))
    env = {**os.environ, "WATERFLOW_HOOKS": str(path)}
    result = subprocess.run(
        [sys.executable, "-m", "waterflow_server", "--port", "0", "--temporal-address", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "hooks.yaml:" in result.stderr and "missing.yaml" in result.stderr and "Traceback" not in result.stderr
