"""Submitting, reading, listing and cancelling runs through the API, against a real Temporal.

The job of ``parked_workflow`` runs on a group no agent serves, so its run stays ``running``
until it is cancelled: no timing assumptions.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

Api = Any  # the `api` fixture of conftest.py
YAML = {"content-type": "application/yaml"}


async def wait_status(api: Api, run_id: str, wanted: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body = (await api.http.get(f"/v1/workflows/{run_id}")).json()
        if body["status"] in wanted:
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.1)


async def test_submit_get_cancel(api: Api, parked_workflow: str) -> None:
    response = await api.http.post(
        "/v1/workflows", json={"workflow": parked_workflow, "inputs": {"who": "ops"}}
    )
    assert response.status_code == 201, response.text
    ref = response.json()
    assert ref["created"] is True and ref["id"].startswith("parked-") and ref["run_id"]
    assert ref["status_url"] == f"/v1/workflows/{ref['id']}"
    assert response.headers["location"] == ref["status_url"]

    run = await wait_status(api, ref["id"], {"running"})
    assert run["name"] == "parked"
    assert run["inputs"] == {"who": "ops", "count": None}
    assert run["temporal_status"] == "Running"

    cancel = await api.http.delete(ref["status_url"])
    assert cancel.status_code == 202, cancel.text
    assert cancel.json()["id"] == ref["id"]
    run = await wait_status(api, ref["id"], {"cancelled"})
    assert run["finished_at"]

    again = await api.http.delete(ref["status_url"])
    assert again.status_code == 409 and again.json()["code"] == "not_running"


async def test_yaml_body_with_id_and_inputs_in_the_query(api: Api, parked_workflow: str) -> None:
    run_id = f"yaml-{uuid.uuid4().hex[:8]}"
    response = await api.http.post(
        "/v1/workflows",
        params={"id": run_id, "inputs": '{"count": "3"}'},
        content=parked_workflow,
        headers=YAML,
    )
    assert response.status_code == 201, response.text
    run = await wait_status(api, run_id, {"running"})
    assert run["inputs"]["count"] == 3
    await api.http.delete(f"/v1/workflows/{run_id}")


async def test_id_is_an_idempotency_key(api: Api, parked_workflow: str) -> None:
    run_id = f"idem-{uuid.uuid4().hex[:8]}"
    body = {"workflow": parked_workflow, "id": run_id}
    first = await api.http.post("/v1/workflows", json=body)
    assert first.status_code == 201, first.text

    running = await api.http.post("/v1/workflows", json=body)
    assert running.status_code == 409, running.text
    assert running.json()["code"] == "conflict"
    assert running.json()["run_id"] == first.json()["run_id"]

    await api.http.delete(f"/v1/workflows/{run_id}")
    await wait_status(api, run_id, {"cancelled"})

    closed = await api.http.post("/v1/workflows", json=body)
    assert closed.status_code == 200, closed.text
    assert closed.json() == {**first.json(), "created": False}


async def test_list_filters_and_pages(api: Api, task_queue: str) -> None:
    name = f"listed-{uuid.uuid4().hex[:8]}"
    text = (
        f"name: {name}\njobs:\n  a:\n    runs-on: {task_queue}\n"
        "    steps:\n      - uses: exec/shell\n        with: {command: echo}\n"
    )
    ids = []
    for _ in range(5):
        response = await api.http.post("/v1/workflows", content=text, headers=YAML)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    await api.http.delete(f"/v1/workflows/{ids[0]}")
    await wait_status(api, ids[0], {"cancelled"})

    async def listing(**params: Any) -> list[dict[str, Any]]:
        found, token = [], None
        for _ in range(50):
            query = {**params, **({"page_token": token} if token else {})}
            page = (await api.http.get("/v1/workflows", params=query)).json()
            found += page["runs"]
            token = page["next_page_token"]
            if not token:
                return found
        raise AssertionError("pagination did not end")

    # Visibility is eventually consistent: wait until all five are listed.
    for _ in range(100):
        everything = await listing(name=name, page_size=2)
        if len(everything) == 5 and {r["status"] for r in everything} == {"running", "cancelled"}:
            break
        await asyncio.sleep(0.1)
    assert sorted(r["id"] for r in everything) == sorted(ids)
    assert len({r["id"] for r in everything}) == 5  # pages never repeat a run
    assert all(r["name"] == name for r in everything)

    running = await listing(name=name, status="running", page_size=3)
    assert sorted(r["id"] for r in running) == sorted(ids[1:])
    cancelled = await listing(name=name, status="cancelled,failed")
    assert [r["id"] for r in cancelled] == [ids[0]]

    for run_id in ids[1:]:
        await api.http.delete(f"/v1/workflows/{run_id}")


async def test_logs_of_a_run_without_steps_yet(api: Api, parked_workflow: str) -> None:
    ref = (await api.http.post("/v1/workflows", json={"workflow": parked_workflow})).json()
    logs = await api.http.get(f"{ref['status_url']}/logs")
    assert logs.status_code == 200, logs.text
    assert logs.json()["status"] == "running"
    await api.http.delete(ref["status_url"])
    await wait_status(api, ref["id"], {"cancelled"})
