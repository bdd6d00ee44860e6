"""``GET /v1/workflows?q=``: the runs list's search box (name or id contains the text, any case).

The parked run's job waits on a group no agent serves, so it stays ``running`` until cancelled.
"""

from __future__ import annotations

import uuid
from typing import Any

from waterflow_sdk.async_client import AsyncClient

Api = Any  # the `api` fixture of conftest.py


async def searched(api: Api, q: str, **params: str) -> list[dict[str, Any]]:
    response = await api.http.get("/v1/workflows", params={"q": q, "page_size": "500", **params})
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()["runs"]
    return runs


async def test_q_matches_a_part_of_the_id_or_the_name_ignoring_case(api: Api, parked_workflow: str) -> None:
    marker = uuid.uuid4().hex[:10]
    run_id = f"Search-{marker}-Probe"
    created = await api.http.post("/v1/workflows", json={"workflow": parked_workflow, "id": run_id})
    assert created.status_code == 201, created.text
    try:
        by_id = await searched(api, marker.upper())
        assert [run["id"] for run in by_id] == [run_id]
        assert run_id in [run["id"] for run in await searched(api, f"h-{marker}-pro")]
        # The name ("parked"), in another case: every run listed matches, the new one among them.
        by_name = await searched(api, "ARKE")
        assert run_id in [run["id"] for run in by_name]
        assert all("arke" in run["name"].lower() or "arke" in run["id"].lower() for run in by_name)
        # With the other filters: both must hold.
        assert [run["id"] for run in await searched(api, marker, status="running", name="parked")] == [run_id]
        assert await searched(api, marker, status="succeeded") == []
        assert await searched(api, marker, name="other") == []
        assert await searched(api, f"{marker}-nope") == []
        # Blank is no filter.
        assert run_id in [run["id"] for run in await searched(api, "   ", name="parked")]
        # The SDK passes it on.
        async with AsyncClient(api.url) as client:
            page = await client.list_runs(search=marker.lower(), page_size=50)
            assert [run.id for run in page.runs] == [run_id]
    finally:
        await api.http.delete(f"/v1/workflows/{run_id}")


async def test_q_is_bounded_and_taken_as_text(api: Api) -> None:
    too_long = await api.http.get("/v1/workflows", params={"q": "x" * 201})
    assert too_long.status_code == 400, too_long.text
    assert too_long.json()["message"] == "q must be at most 200 characters"
    # Quotes and visibility syntax are plain text here (q never reaches a visibility query).
    assert await searched(api, f"' OR WorkflowId != '{uuid.uuid4().hex}") == []


async def test_the_openapi_document_lists_q(api: Api) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    parameters = {param["name"] for param in spec["paths"]["/v1/workflows"]["get"]["parameters"]}
    assert "q" in parameters
