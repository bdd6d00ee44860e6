"""Every error is JSON with a clear message: bad bodies, unknown ids and routes, limits."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

Api = Any  # the `api` fixture of conftest.py


def workflow_yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip()


YAML = {"content-type": "application/yaml"}


def assert_error(response, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list)
    if code is not None:
        assert body["code"] == code
    assert "Traceback" not in response.text
    return body


async def test_unknown_run_is_404(api: Api) -> None:
    for method, path in [
        ("GET", "/v1/workflows/nope"),
        ("DELETE", "/v1/workflows/nope"),
        ("GET", "/v1/workflows/nope/logs"),
    ]:
        body = assert_error(await api.http.request(method, path), 404, "not_found")
        assert "nope" in body["message"]


async def test_unknown_route_is_404_and_wrong_method_is_405(api: Api) -> None:
    assert_error(await api.http.get("/v2/anything"), 404, "not_found")
    body = assert_error(await api.http.put("/v1/workflows"), 405, "method_not_allowed")
    assert "GET" in body["message"] and "POST" in body["message"]


async def test_agent_registry_workflow_is_not_a_run(api: Api) -> None:
    assert_error(await api.http.get("/v1/workflows/waterflow-agent:someone"), 404)


async def test_invalid_workflow_lists_every_problem_with_line_and_column(api: Api) -> None:
    text = workflow_yaml(
        """
        name: broken
        jobs:
          a:
            runs-on: local
            stepz: []
            steps:
              - uses: exec/shell
                timeout: 5 minutes
                with: {command: echo}
        """
    )
    for response in (
        await api.http.post("/v1/workflows", content=text, headers=YAML),
        await api.http.post("/v1/validate", json={"workflow": text}),
    ):
        body = assert_error(response, 422, "invalid_workflow")
        paths = {item["path"] for item in body["errors"]}
        assert "jobs.a.stepz" in paths
        assert "jobs.a.steps[0].timeout" in paths
        for item in body["errors"]:
            assert item["line"] > 0 and item["column"] > 0
            assert set(item) == {"line", "column", "path", "message"}


async def test_unknown_node_type_is_422(api: Api) -> None:
    text = workflow_yaml(
        """
        name: typo
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shel
                with: {command: echo}
        """
    )
    body = assert_error(await api.http.post("/v1/validate", content=text, headers=YAML), 422)
    [item] = body["errors"]
    assert (item["line"], item["column"], item["path"]) == (6, 15, "jobs.a.steps[0].uses")
    assert item["message"].startswith("unknown node type 'exec/shel' (did you mean 'exec/shell'? known: ")


async def test_with_is_checked_against_the_node_schema(api: Api) -> None:
    text = workflow_yaml(
        """
        name: bad-with
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {comand: echo}
        """
    )
    body = assert_error(await api.http.post("/v1/validate", content=text, headers=YAML), 422)
    # The same words as `waterflow validate` offline: the translation lives in core.
    assert body["errors"] == [
        {
            "line": 7,
            "column": 9,
            "path": "jobs.a.steps[0].with.command",
            "message": "missing required input 'command' of exec/shell",
        },
        {
            "line": 7,
            "column": 16,
            "path": "jobs.a.steps[0].with.comand",
            "message": "exec/shell has no input 'comand' (did you mean 'command'?)",
        },
    ]


async def test_a_valid_workflow_names_the_nodes_the_server_cannot_check(api: Api) -> None:
    text = workflow_yaml(
        """
        name: ok
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {command: echo}
        """
    )
    response = await api.http.post("/v1/validate", content=text, headers=YAML)
    assert response.status_code == 200, response.text
    assert response.json() == {"valid": True, "name": "ok", "jobs": ["a"], "unchecked": [], "inputs": []}


async def test_bad_inputs_are_422_with_line_zero(api: Api, parked_workflow: str) -> None:
    response = await api.http.post(
        "/v1/workflows", json={"workflow": parked_workflow, "inputs": {"count": "many", "extra": 1}}
    )
    body = assert_error(response, 422, "invalid_workflow")
    assert {item["path"] for item in body["errors"]} == {"inputs.count", "inputs.extra"}
    assert all(item["line"] == 0 for item in body["errors"])


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"", {"content-type": "application/yaml"}, 400),
        (b"{not json", {"content-type": "application/json"}, 400),
        (b"[1, 2]", {"content-type": "application/json"}, 400),
        (b'{"workflow": 5}', {"content-type": "application/json"}, 400),
        (b'{"workflow": "name: x", "inputs": []}', {"content-type": "application/json"}, 400),
        (b'{"workflow": "name: x", "bogus": 1}', {"content-type": "application/json"}, 400),
        (b'{"workflow": "name: x", "check": "yes"}', {"content-type": "application/json"}, 400),
        (b"\xff\xfe\x00garbage", {"content-type": "application/yaml"}, 400),
        (b"--b\r\n", {"content-type": "multipart/form-data; boundary=b"}, 415),
        (b"key: [unclosed", {"content-type": "text/yaml"}, 422),
        (b"&a x: *a", {"content-type": "application/yaml"}, 422),
        (b"- just\n- a list\n", {"content-type": "application/yaml"}, 422),
    ],
)
async def test_bad_bodies_are_clear_4xx(api: Api, body: bytes, headers: dict[str, str], status: int) -> None:
    for path in ("/v1/workflows", "/v1/validate"):
        assert_error(await api.http.post(path, content=body, headers=headers), status)


@pytest.mark.parametrize("run_id", ["has space", "", "x" * 201, "waterflow-agent:mine", "-dash", "a/b"])
async def test_bad_run_ids_are_400(api: Api, parked_workflow: str, run_id: str) -> None:
    body = {"workflow": parked_workflow, "id": run_id}
    assert_error(await api.http.post("/v1/workflows", json=body), 400, "invalid_id")


async def test_oversized_body_is_413(api: Api) -> None:
    big = b"name: big\n# " + b"x" * (api.settings.max_body_bytes + 1)
    assert_error(await api.http.post("/v1/workflows", content=big, headers=YAML), 413, "payload_too_large")

    async def chunks():  # type: ignore[no-untyped-def]  # no Content-Length: the cap must hold while streaming
        for _ in range(api.settings.max_body_bytes // 4096 + 2):
            yield b"#" * 4096

    assert_error(await api.http.post("/v1/validate", content=chunks(), headers=YAML), 413)


async def test_bad_query_parameters_are_400(api: Api) -> None:
    assert_error(await api.http.get("/v1/workflows", params={"status": "bogus"}), 400)
    assert_error(await api.http.get("/v1/workflows", params={"page_size": "0"}), 400)
    assert_error(await api.http.get("/v1/workflows", params={"page_size": "ten"}), 400)
    assert_error(await api.http.get("/v1/workflows", params={"page_token": "not-a-token"}), 400)
    assert_error(
        await api.http.post("/v1/workflows", params={"inputs": "[1]"}, content=b"name: x", headers=YAML), 400
    )
    assert_error(
        await api.http.post("/v1/workflows", params={"check": "1"}, content=b"name: x", headers=YAML), 400
    )


async def test_validate_accepts_yaml_and_json(api: Api, parked_workflow: str) -> None:
    for response in (
        await api.http.post("/v1/validate", content=parked_workflow, headers=YAML),
        await api.http.post("/v1/validate", content=parked_workflow, headers={"content-type": "text/yaml"}),
        await api.http.post("/v1/validate", json={"workflow": parked_workflow, "inputs": {"count": "3"}}),
    ):
        assert response.status_code == 200, response.text
        assert response.json() == {
            "valid": True,
            "name": "parked",
            "jobs": ["wait"],
            "unchecked": [],
            "inputs": [
                dict(name="who", type="string", description="", required=False, default="world", options=None),
                dict(name="count", type="number", description="", required=False, default=None, options=None),
            ],
        }


async def test_no_input_reaches_a_500(api: Api) -> None:
    weird = [
        "\x00",
        "name: \x00",
        json.dumps({"workflow": "\ud800"}),
        "jobs: {a: {steps: 5}}",
        "{{{{",
        "name: " + "[" * 500,
    ]
    for text in weird:
        response = await api.http.post(
            "/v1/workflows", content=text.encode("utf-8", "surrogatepass"), headers=YAML
        )
        assert 400 <= response.status_code < 500, (text, response.text)
        assert response.headers["content-type"].startswith("application/json")
