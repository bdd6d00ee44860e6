"""``GET /v1/workflows?since=&until=``: runs by start time, in the API and its OpenAPI document.

The parked run's job waits on a group no agent serves, so it stays ``running`` until cancelled.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

Api = Any  # the `api` fixture of conftest.py


async def listed(api: Api, **params: str) -> list[str]:
    response = await api.http.get("/v1/workflows", params={"name": "parked", "page_size": "50", **params})
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()["runs"]]


async def test_runs_are_filtered_by_start_time(api: Api, parked_workflow: str) -> None:
    run_id = f"filters-{uuid.uuid4().hex[:8]}"
    before = datetime.now(UTC) - timedelta(seconds=5)
    created = await api.http.post("/v1/workflows", json={"workflow": parked_workflow, "id": run_id})
    assert created.status_code == 201, created.text
    later = datetime.now(UTC) + timedelta(hours=1)
    try:
        # Visibility is eventually consistent: wait for the run to be listed at all first.
        deadline = asyncio.get_running_loop().time() + 30
        while run_id not in await listed(api, since=before.isoformat()):
            assert asyncio.get_running_loop().time() < deadline, f"{run_id} never listed"
            await asyncio.sleep(0.2)
        assert run_id in await listed(api, since=before.isoformat(), until=later.isoformat())
        # No offset means UTC; a date is its midnight.
        assert run_id in await listed(api, since=before.replace(tzinfo=None).isoformat())
        assert run_id not in await listed(api, since=later.isoformat())
        assert run_id not in await listed(api, until="2000-01-01")
        assert run_id in await listed(api, since=before.isoformat(), status="running")
        assert run_id not in await listed(api, since=before.isoformat(), status="succeeded")
    finally:
        await api.http.delete(f"/v1/workflows/{run_id}")


async def test_a_bad_time_is_a_400_naming_the_parameter(api: Api) -> None:
    for name, value in (
        ("since", "yesterday"),
        ("until", "2026-13-01"),
        ("since", "1' OR '1'='1"),
        ("until", "0001-01-01T00:00:00+01:00"),
    ):
        response = await api.http.get("/v1/workflows", params={name: value})
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["code"] == "bad_request" and body["message"].startswith(f"{name} must be an RFC 3339 timestamp")


async def test_the_openapi_document_lists_the_time_filters(api: Api) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    parameters = {param["name"] for param in spec["paths"]["/v1/workflows"]["get"]["parameters"]}
    assert {"status", "name", "page_size", "page_token", "since", "until"} <= parameters
