"""Request bounds through a real server: malformed requests are clean 4xx, hostile workflows do
not stall the server, follow streams are capped."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from waterflow_server.api.bodies import MAX_JSON_DEPTH
from waterflow_server.api.streams import DEFAULT_PER_CLIENT
from waterflow_testing.pytest_plugin import eventually

pytestmark = pytest.mark.integration

Api = Any  # the `api` fixture of conftest.py
YAML = {"content-type": "application/yaml"}
JSON = {"content-type": "application/json"}


def assert_clean_4xx(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["code"], str) and body["message"] and isinstance(body["errors"], list)
    return dict(body)


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


async def test_deeply_nested_json_bodies_and_query_inputs_are_400(api: Api, parked_workflow: str) -> None:
    deep_inputs = '{"who":' + _nested(MAX_JSON_DEPTH + 5) + "}"
    hostile = "[" * 20_000 + "]" * 20_000  # under the test server's 64 KiB body limit
    for path in ("/v1/workflows", "/v1/validate"):
        for body in (hostile, '{"workflow": "name: x", "inputs": ' + deep_inputs + "}"):
            body_answer = assert_clean_4xx(await api.http.post(path, content=body, headers=JSON), 400)
            assert "nested deeper than" in body_answer["message"]
        for inputs in (deep_inputs, "[" * 20_000):
            response = await api.http.post(path, params={"inputs": inputs}, content=parked_workflow, headers=YAML)
            assert "nested deeper than" in assert_clean_4xx(response, 400)["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"workflow": ["name: x"]},
        {"workflow": None},
        {"workflow": "name: x", "inputs": "who=1"},
        {"workflow": "name: x", "inputs": 5},
        {"workflow": "name: x", "id": 5},
        {"workflow": "name: x", "id": ["a"]},
        {"workflow": "name: x", "id": {"a": 1}},
        {"workflow": "name: x", "inputs": {"who": float("nan")}},
        [],
        "workflow",
        None,
        17,
    ],
)
async def test_wrong_json_types_are_400(api: Api, body: Any) -> None:
    text = json.dumps(body)  # NaN is written as the non-JSON NaN: refused like the rest
    for path in ("/v1/workflows", "/v1/validate"):
        assert_clean_4xx(await api.http.post(path, content=text, headers=JSON), 400)


async def test_bad_utf8_anywhere_is_4xx(api: Api, parked_workflow: str) -> None:
    for path in ("/v1/workflows", "/v1/validate"):
        assert_clean_4xx(await api.http.post(path, content=b'{"workflow": "\xff"}', headers=JSON), 400)
        assert_clean_4xx(await api.http.post(path, content=b"name: \xc3", headers=YAML), 400)
        raw_query = f"{path}?inputs=%7B%22who%22%3A%22%FF%22%7D"  # {"who":"\xff"}
        response = await api.http.post(raw_query, content=parked_workflow, headers=YAML)
        assert response.status_code < 500, response.text
    assert (await api.http.get("/v1/workflows?page_token=%FF%FE")).status_code == 400
    assert (await api.http.get("/v1/workflows?status=%FF")).status_code == 400


@pytest.mark.parametrize(
    "token",
    ["%%%", "bm90IGpzb24", "WzEsMl0", "InRleHQi", "eyJ0Ijo1fQ", "eyJ0IjpudWxsLCJzIjoiMyJ9", "eyJ0IjoiQUFBQSIsInMiOjB9"],
)
async def test_bad_page_tokens_are_400(api: Api, token: str) -> None:
    # Not base64, not JSON, a list, a string, wrong types, and a well-formed token Temporal refuses.
    body = assert_clean_4xx(await api.http.get("/v1/workflows", params={"page_token": token}), 400)
    assert "page_token" in body["message"]


async def _raw_request(api: Api, request: bytes) -> bytes:
    """Send bytes no well-behaved client would, and read what comes back until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", api.settings.port)
    try:
        writer.write(request)
        await writer.drain()
        data = b""
        while not _complete(data):
            chunk = await asyncio.wait_for(reader.read(65536), 30)
            if not chunk:
                break
            data += chunk
        return data
    except ConnectionError:
        return b""  # hanging up on junk is an answer too
    finally:
        writer.close()


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


async def test_huge_headers_and_bodies_are_refused_without_a_500(api: Api) -> None:
    junk = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Junk: " + b"a" * 200_000 + b"\r\n\r\n"
    answer = await _raw_request(api, junk)
    assert not answer.startswith(b"HTTP/1.1 5"), answer[:200]
    huge = b"POST /v1/validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/yaml\r\n"
    answer = await _raw_request(api, huge + b"Content-Length: 1000000000000000000\r\n\r\nname: x")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer


async def test_follow_streams_are_capped_per_client(api: Api, parked_workflow: str) -> None:
    ref = (await api.http.post("/v1/workflows", json={"workflow": parked_workflow})).json()
    url = f"{ref['status_url']}/logs"
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        streams = [http.stream("GET", url, params={"follow": "true"}) for _ in range(DEFAULT_PER_CLIENT)]
        opened = [await stream.__aenter__() for stream in streams]
        try:
            assert all(response.status_code == 200 for response in opened)
            body = assert_clean_4xx(await http.get(url, params={"follow": "true"}), 429)
            assert body["code"] == "too_many_streams"
            assert (await http.get(url)).status_code == 200  # snapshots are not streams
        finally:
            for stream in streams:
                await stream.__aexit__(None, None, None)

        async def one_more() -> int:
            async with http.stream("GET", url, params={"follow": "true"}) as response:
                return response.status_code

        # Closed streams give their places back (once the server notices the disconnect).
        assert await eventually(one_more, lambda status: status == 200) == 200
    await api.http.delete(ref["status_url"])


def _hostile_workflow(size: int = 1024 * 1024 - 4096) -> str:
    """About 1 MiB of steps whose ``if:`` is a broken expression: seconds of CPU to check."""
    head = "name: hostile\njobs:\n  a:\n    runs-on: local\n    steps:\n"
    line = "      - {uses: exec/shell, if: 'nope.x + (', with: {command: x}}\n"
    return head + line * ((size - len(head)) // len(line))


async def test_hostile_workflows_do_not_stall_the_server(start_server: Any) -> None:
    server = start_server()
    text = _hostile_workflow()
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
        hostile = [
            asyncio.ensure_future(http.post("/v1/validate", content=text, headers=YAML)) for _ in range(4)
        ]
        # Health is asked while the hostile ones are being checked (none has been answered yet).
        await asyncio.sleep(0.5)
        health = await http.get("/healthz")
        pending_when_healthy = sum(not task.done() for task in hostile)
        answers = await asyncio.gather(*hostile)
    assert health.status_code == 200, health.text
    assert pending_when_healthy > 0  # /healthz did not wait for the validations
    for answer in answers:
        body = assert_clean_4xx(answer)
        assert body["code"] in {"invalid_workflow", "too_complex"}, body


@pytest.mark.parametrize("run_id", ["%00", "%FF%FE", "a" * 4000, "%20", "..", "a%2Fb", "%F0%9F%92%A9"])
async def test_odd_run_ids_in_paths_are_4xx(api: Api, run_id: str) -> None:
    for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/logs"), ("GET", "/logs?follow=true")):
        response = await api.http.request(method, f"/v1/workflows/{run_id}{suffix}")
        assert_clean_4xx(response)


@pytest.mark.parametrize(
    "query",
    ["page_size=1e3", "page_size=-1", "page_size=99999999999999999999999", "page_size=", "status=,,,", "name=%00"],
)
async def test_odd_list_queries_are_answered_without_a_5xx(api: Api, query: str) -> None:
    response = await api.http.get(f"/v1/workflows?{query}")
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
