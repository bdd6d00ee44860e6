"""``limit`` on ``POST /v1/workflows`` (issue 14): kept in the run's snapshot, bad patterns refused."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

Api = Any  # the `api` fixture of conftest.py


async def test_limit_is_kept_in_the_snapshot_from_json_and_from_the_query(api: Api, parked_workflow: str) -> None:
    for send in ("json", "query"):
        run_id = f"limit-{send}-{uuid.uuid4().hex[:8]}"
        if send == "json":
            body = {"workflow": parked_workflow, "id": run_id, "limit": ["web-1,web-[2-3]", "group:db"]}
            response = await api.http.post("/v1/workflows", json=body)
        else:
            response = await api.http.post(
                "/v1/workflows",
                params={"id": run_id, "limit": "web-1,web-[2-3],group:db"},
                content=parked_workflow,
                headers={"content-type": "application/yaml"},
            )
        assert response.status_code == 201, response.text
        snapshot = (await api.http.get(f"/v1/workflows/{run_id}/snapshot")).json()
        assert snapshot["limit"] == ["web-1", "web-[2-3]", "group:db"], send
        await api.http.delete(f"/v1/workflows/{run_id}")


async def test_without_limit_the_snapshot_says_none(api: Api, parked_workflow: str) -> None:
    run_id = f"nolimit-{uuid.uuid4().hex[:8]}"
    response = await api.http.post("/v1/workflows", json={"workflow": parked_workflow, "id": run_id})
    assert response.status_code == 201, response.text
    assert (await api.http.get(f"/v1/workflows/{run_id}/snapshot")).json()["limit"] is None
    await api.http.delete(f"/v1/workflows/{run_id}")


@pytest.mark.parametrize(
    ("limit", "says"),
    [
        ("web-1,,web-2", "empty pattern"),
        ("web 1", "without whitespace"),
        ("../etc/passwd", "without whitespace or '/'"),
        (42, "expected a comma-separated text or a list of texts"),
        ("x," * 200, "at most 100"),
    ],
)
async def test_a_bad_limit_is_a_400_naming_limit(api: Api, parked_workflow: str, limit: Any, says: str) -> None:
    response = await api.http.post("/v1/workflows", json={"workflow": parked_workflow, "limit": limit})
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert message.startswith("'limit': ") and says in message
