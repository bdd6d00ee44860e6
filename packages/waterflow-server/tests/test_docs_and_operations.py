"""OpenAPI, Swagger UI with local assets, health and Prometheus metrics."""

from __future__ import annotations

import re
from typing import Any

Api = Any  # the `api` fixture of conftest.py

ENDPOINTS = {
    "/v1/workflows": {"get", "post"},
    "/v1/workflows/{id}": {"get", "delete"},
    "/v1/workflows/{id}/logs": {"get"},
    "/v1/validate": {"post"},
    "/v1/nodes": {"get"},
    "/v1/agents": {"get"},
    "/healthz": {"get"},
    "/metrics": {"get"},
}


async def test_openapi_documents_every_endpoint(api: Api) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    for path, methods in ENDPOINTS.items():
        assert methods <= set(spec["paths"][path]), path
    submit = spec["paths"]["/v1/workflows"]["post"]
    assert {"application/json", "application/yaml"} <= set(submit["requestBody"]["content"])
    assert {"201", "200", "409", "413", "422"} <= set(submit["responses"])
    schemas = spec["components"]["schemas"]
    assert {"RunRef", "RunDetail", "ErrorBody", "SubmitRequest"} <= set(schemas)


async def test_swagger_ui_uses_only_local_assets(api: Api) -> None:
    redirect = await api.http.get("/docs")
    assert redirect.status_code in (301, 302, 307, 308)
    page = await api.http.get("/docs/")
    assert page.status_code == 200 and "swagger-ui" in page.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls and all(url.startswith("/") for url in urls), urls
    assert "http://" not in page.text and "https://" not in page.text
    for url in urls:
        asset = await api.http.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100
    missing = await api.http.get("/docs/assets/../../etc/passwd")
    assert missing.status_code == 404


async def test_healthz(api: Api) -> None:
    response = await api.http.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["temporal"] == "ok" and body["worker"] == "running"


async def test_metrics_count_requests_and_submissions(api: Api, parked_workflow: str) -> None:
    def value(text: str, pattern: str) -> float:
        match = re.search(pattern + r" ([0-9.e+]+)$", text, re.M)
        return float(match.group(1)) if match else 0.0

    before = (await api.http.get("/metrics")).text
    await api.http.get("/v1/workflows/does-not-exist")
    ref = (await api.http.post("/v1/workflows", json={"workflow": parked_workflow})).json()
    await api.http.post("/v1/workflows", json={"workflow": "name: x"})
    after_response = await api.http.get("/metrics")
    assert after_response.headers["content-type"].startswith("text/plain")
    after = after_response.text
    route = r'waterflow_http_requests_total\{method="GET",route="/v1/workflows/\{id\}",status="404"\}'
    assert value(after, route) == value(before, route) + 1
    assert (
        value(after, "waterflow_runs_submitted_total") == value(before, "waterflow_runs_submitted_total") + 1
    )
    rejected = r'waterflow_submissions_rejected_total\{reason="invalid_workflow"\}'
    assert value(after, rejected) == value(before, rejected) + 1
    assert "waterflow_http_request_duration_seconds_bucket" in after
    await api.http.delete(ref["status_url"])


async def test_every_endpoint_in_the_openapi_document_is_in_the_api_reference(api: Api) -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[3] / "docs" / "reference" / "api.md").read_text()
    spec = (await api.http.get("/openapi.json")).json()
    undocumented = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method in operations
        if f"`{method.upper()} {path}`" not in page
    ]
    assert not undocumented, f"add these to docs/reference/api.md: {undocumented}"
