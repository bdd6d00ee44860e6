"""Cross-site attacks and bearer tokens, over real HTTP against real servers.

The cross-site tests use the shared in-process API (authentication off, as ``waterflow dev``
on loopback); the token tests start ``waterflow server`` processes with tokens configured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from waterflow_sdk import Client
from waterflow_sdk.errors import WaterflowAPIError
from waterflow_testing.processes import free_port
from waterflow_testing.server import StartServer, WaterflowCLI

Api = Any  # the `api` fixture of conftest.py
EVIL = "http://evil.example"
OPERATOR = "op-" + "o" * 29
READER = "ro-" + "r" * 29


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["message"] and body["errors"] == []
    return body


async def assert_no_run(api: Api, run_id: str) -> None:
    # The submission answers only after Temporal started the run, so a refused one is gone for good.
    response = await api.http.get(f"/v1/workflows/{run_id}")
    assert response.status_code == 404, response.text


async def test_text_plain_post_from_a_foreign_origin_runs_nothing(api: Api, parked_workflow: str) -> None:
    run_id = f"xsite-{uuid.uuid4().hex[:8]}"
    attack = await api.http.post(
        "/v1/workflows",
        params={"id": run_id},
        content=parked_workflow,
        headers={"content-type": "text/plain", "origin": EVIL},
    )
    assert_refused(attack, 403, "origin_not_allowed")
    await assert_no_run(api, run_id)
    # Browsers that send no Origin (or a same-origin page) still cannot use text/plain.
    no_origin = await api.http.post(
        "/v1/workflows", params={"id": run_id}, content=parked_workflow, headers={"content-type": "text/plain"}
    )
    assert_refused(no_origin, 415, "unsupported_media_type")
    await assert_no_run(api, run_id)
    # The same request with a JSON/YAML type and no foreign origin does run: the attack was real.
    control = await api.http.post(
        "/v1/workflows",
        params={"id": run_id},
        content=parked_workflow,
        headers={"content-type": "application/yaml", "origin": api.url},
    )
    assert control.status_code == 201, control.text
    assert (await api.http.delete(f"/v1/workflows/{run_id}")).status_code == 202


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=b",
        "text/plain;charset=UTF-8",
        "",
    ],
)
async def test_browser_simple_bodies_get_415(api: Api, parked_workflow: str, content_type: str) -> None:
    run_id = f"form-{uuid.uuid4().hex[:8]}"
    headers = {"content-type": content_type} if content_type else {}
    for path in ("/v1/workflows", "/v1/validate"):
        response = await api.http.post(path, params={"id": run_id}, content=parked_workflow, headers=headers)
        assert_refused(response, 415, "unsupported_media_type")
    await assert_no_run(api, run_id)


async def test_a_foreign_host_header_is_refused(api: Api, parked_workflow: str) -> None:
    run_id = f"rebind-{uuid.uuid4().hex[:8]}"
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example"):
        submit = await api.http.post(
            "/v1/workflows",
            params={"id": run_id},
            content=parked_workflow,
            headers={"content-type": "application/yaml", "host": host},
        )
        assert_refused(submit, 400, "host_not_allowed")
        assert_refused(await api.http.get("/v1/workflows", headers={"host": host}), 400, "host_not_allowed")
    await assert_no_run(api, run_id)
    for host in ("localhost:1234", "127.0.0.1", "[::1]:80", "LOCALHOST."):
        assert (await api.http.get("/healthz", headers={"host": host})).status_code == 200, host


@pytest.mark.parametrize("origin", [EVIL, "null", "http://127.0.0.1:1", "file://"])
async def test_foreign_origins_are_refused_on_reads_too(api: Api, origin: str) -> None:
    response = await api.http.get("/v1/workflows", headers={"origin": origin})
    assert_refused(response, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in response.headers


async def test_cors_preflight_is_never_granted(api: Api) -> None:
    response = await api.http.options(
        "/v1/workflows",
        headers={"origin": EVIL, "access-control-request-method": "POST"},
    )
    assert response.status_code >= 400
    assert not any(name.startswith("access-control-") for name in response.headers)


async def test_api_answers_are_never_stored_or_sniffed(api: Api) -> None:
    for path in ("/v1/workflows", "/v1/nodes", "/v1/workflows/nope"):
        response = await api.http.get(path)
        assert response.status_code in (200, 404), response.text
        assert response.headers["cache-control"] == "no-store", path
        assert response.headers["x-content-type-options"] == "nosniff", path
    refused = await api.http.get("/v1/workflows", headers={"origin": EVIL})
    assert refused.status_code == 403
    assert refused.headers["cache-control"] == "no-store"
    unknown = await api.http.get("/no/such/route")  # an error answer anywhere
    assert unknown.status_code == 404 and unknown.headers["cache-control"] == "no-store"
    # Outside the API each route keeps its own policy: the console's files are revalidated.
    assert (await api.http.get("/ui/")).headers["cache-control"] == "no-cache"
    assert "cache-control" not in (await api.http.get("/healthz")).headers


# -- tokens -------------------------------------------------------------------------------------

ROUTES = {
    # route class -> requests (method, path, json body)
    "public": [("GET", "/healthz", None), ("GET", "/openapi.json", None), ("GET", "/docs/", None)],
    "read": [
        ("GET", "/v1/workflows", None),
        ("GET", "/v1/workflows/nope", None),
        ("GET", "/v1/workflows/nope/logs", None),
        ("GET", "/v1/nodes", None),
        ("GET", "/v1/agents", None),
        ("GET", "/metrics", None),
        ("GET", "/no/such/route", None),
    ],
    "operator": [
        ("POST", "/v1/workflows", {"workflow": "name: x"}),
        ("POST", "/v1/validate", {"workflow": "name: x"}),
        ("DELETE", "/v1/workflows/nope", None),
        ("POST", "/v1/workflows/nope/signals/go", {"decision": "approve"}),
    ],
}


def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# name scope token\nci-bot operator {OPERATOR}\n\ndashboard read {READER}\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def guarded(start_server: StartServer, tmp_path: Path) -> str:
    """A server with one operator and one read-only token from a token file."""
    return start_server(env={"WATERFLOW_API_TOKEN_FILE": str(token_file(tmp_path))}).url


def test_every_route_class_needs_the_right_token(guarded: str) -> None:
    def send(method: str, path: str, body: Any, token: str | None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, guarded + path, json=body, headers=headers, timeout=30)

    for method, path, body in ROUTES["public"]:
        assert send(method, path, body, None).status_code == 200, path
    for method, path, body in ROUTES["read"] + ROUTES["operator"]:
        missing = send(method, path, body, None)
        assert_refused(missing, 401, "unauthorized")
        assert missing.headers["www-authenticate"] == 'Bearer realm="waterflow"'
        wrong = send(method, path, body, OPERATOR[:-1] + "x")
        assert_refused(wrong, 401, "unauthorized")
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        basic = httpx.request(method, guarded + path, json=body, auth=("ci-bot", OPERATOR), timeout=30)
        assert_refused(basic, 401, "unauthorized")
        for token in (READER, OPERATOR):
            allowed = send(method, path, body, token)
            if method != "GET" and token == READER:
                refused = assert_refused(allowed, 403, "forbidden")
                assert "'dashboard' is read-only" in refused["message"]
                assert 'error="insufficient_scope"' in allowed.headers["www-authenticate"]
            else:
                assert allowed.status_code not in (401, 403), (path, allowed.text)
                assert "www-authenticate" not in allowed.headers
        assert READER not in missing.text + wrong.text and OPERATOR not in wrong.text
        if path.startswith("/v1/"):  # refused or answered, an API answer is never stored
            assert {missing.headers["cache-control"], allowed.headers["cache-control"]} == {"no-store"}, path


def test_tokens_are_never_logged(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server(env={"WATERFLOW_API_TOKEN_FILE": str(token_file(tmp_path))}, args=["-v"])
    for token in (READER, OPERATOR, "not-a-token-but-long-enough"):
        httpx.post(
            f"{server.url}/v1/workflows",
            json={"workflow": "name: x"},
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
    output = server.output
    assert "API access: bearer tokens required (1 read, 1 operator)" in output
    assert "refused POST /v1/workflows" in output  # the log was on
    assert READER not in output and OPERATOR not in output and "not-a-token" not in output


def test_cli_and_sdk_work_with_the_token(
    start_server: StartServer, waterflow_cli: WaterflowCLI, tmp_path: Path, parked_workflow: str
) -> None:
    server = start_server(token=OPERATOR)
    assert server.token == OPERATOR
    workflow = tmp_path / "parked.yaml"
    workflow.write_text(parked_workflow)
    without = waterflow_cli("submit", str(workflow), server=server.url, env={"WATERFLOW_API_TOKEN": ""})
    assert without.returncode == 1 and "needs a bearer token" in without.stderr and "HTTP 401" in without.stderr

    env = {"WATERFLOW_API_TOKEN": OPERATOR}
    run_id = f"with-token-{uuid.uuid4().hex[:8]}"
    submitted = waterflow_cli("submit", str(workflow), "--id", run_id, server=server.url, env=env)
    assert submitted.returncode == 0, submitted.stderr
    shown = waterflow_cli("status", run_id, server=server.url, env=env)
    assert shown.returncode == 0 and run_id in shown.stdout, shown.stderr

    with Client(server.url, token=OPERATOR) as client:
        assert client.get(run_id).status == "running"
        assert client.cancel(run_id).id == run_id
        assert client.wait(run_id, timeout=60, poll=0.2).status == "cancelled"
    with Client(server.url, token=READER) as reader:
        with pytest.raises(WaterflowAPIError) as refused:
            reader.list_runs()
        assert refused.value.status == 401


def test_the_sdk_reads_the_token_from_the_environment(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server(token=OPERATOR)
    monkeypatch.setenv("WATERFLOW_API_TOKEN", OPERATOR)
    with Client(server.url) as client:
        assert client.list_runs(page_size=1).runs is not None
        assert client.nodes() is not None
    monkeypatch.delenv("WATERFLOW_API_TOKEN")
    with Client(server.url) as anonymous, pytest.raises(WaterflowAPIError) as refused:
        anonymous.nodes()
    assert refused.value.status == 401 and refused.value.code == "unauthorized"


# -- exposure -----------------------------------------------------------------------------------


def _server(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_API_TOKEN")}
    return subprocess.run(
        [sys.executable, "-m", "waterflow_server", "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environ, **(env or {}), "WATERFLOW_TEMPORAL_ADDRESS": "127.0.0.1:1"},
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.unit
def test_a_network_address_without_a_token_refuses_to_start() -> None:
    for host in ("0.0.0.0", "::", "10.1.2.3", "myhost.example"):
        result = _server("--host", host)
        assert result.returncode != 0
        assert f"refusing to serve the API on {host} without authentication" in result.stderr
        assert "WATERFLOW_API_TOKEN" in result.stderr and "--insecure" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.unit
def test_bad_token_configuration_is_a_clear_start_up_error(tmp_path: Path) -> None:
    short = _server(env={"WATERFLOW_API_TOKEN": "hunter2"})
    assert short.returncode != 0 and "shorter than 16 characters" in short.stderr
    assert "hunter2" not in short.stderr
    path = token_file(tmp_path)
    path.chmod(0o644)
    shared = _server("--token-file", str(path))
    assert shared.returncode != 0 and "readable by other users" in shared.stderr
    path.write_text(f"ci operator {OPERATOR}\nci read {READER}\nbroken line\n")
    path.chmod(0o600)
    broken = _server("--token-file", str(path))
    assert broken.returncode != 0 and f"{path}:3: expected '<name> <scope> <token>'" in broken.stderr
    assert OPERATOR not in broken.stderr
    path.write_text(f"ci admin {OPERATOR}\n")
    scope = _server("--token-file", str(path))
    assert f"{path}:1: scope must be 'read' or 'operator', not 'admin'" in scope.stderr


def test_insecure_serves_on_all_interfaces_with_a_loud_warning(start_server: StartServer) -> None:
    server = start_server(args=["--host", "0.0.0.0", "--insecure"], env={"WATERFLOW_API_TOKEN": ""})
    assert "WARNING: authentication is OFF and the API listens on 0.0.0.0" in server.output
    assert httpx.get(f"{server.url}/v1/workflows", timeout=30).status_code == 200
    # Still no cross-site requests: the Host and Origin checks do not depend on authentication.
    assert httpx.get(f"{server.url}/v1/workflows", headers={"host": "evil.example"}).status_code == 400
    assert "API access: authentication off" in server.output


async def test_openapi_describes_the_bearer_token(api: Api) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert {"bearer": []} in spec["security"] and {} in spec["security"]
    submit = spec["paths"]["/v1/workflows"]["post"]
    assert {"401", "403", "415"} <= set(submit["responses"])
    assert "401" in spec["paths"]["/v1/nodes"]["get"]["responses"]
    assert "401" not in spec["paths"]["/healthz"]["get"]["responses"]


@pytest.mark.unit
def test_dev_off_loopback_needs_insecure_even_with_a_token(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_API_TOKEN")}
    base = [sys.executable, "-m", "waterflow_sdk", "dev", "--data-dir", str(tmp_path), "--host"]
    with_token = subprocess.run(
        [*base, "0.0.0.0"], capture_output=True, text=True, timeout=60, env={**environ, "WATERFLOW_API_TOKEN": OPERATOR}
    )
    assert with_token.returncode != 0 and "refusing to run the embedded Temporal on 0.0.0.0" in with_token.stderr
    without = subprocess.run([*base, "10.1.2.3"], capture_output=True, text=True, timeout=60, env=environ)
    assert without.returncode != 0 and "refusing to serve the API on 10.1.2.3 without authentication" in without.stderr
    assert not any(tmp_path.iterdir())  # nothing was started


@pytest.mark.unit
def test_a_temporal_tls_settings_mistake_stops_the_server_before_connecting(tmp_path: Path) -> None:
    for env, expected in (
        ({"WATERFLOW_TEMPORAL_TLS_CERT": str(tmp_path / "client.pem")}, "_TLS_KEY must be set together"),
        ({"WATERFLOW_TEMPORAL_TLS_CA": str(tmp_path / "missing-ca.pem")}, "WATERFLOW_TEMPORAL_TLS_CA: cannot read"),
    ):
        result = _server(env=env)
        assert result.returncode != 0
        assert expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "cannot reach Temporal" not in result.stderr
