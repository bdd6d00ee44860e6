"""``GET /v1/workflows/{id}`` while the console polls it: a running run skips the reruns scan.

Reruns exist only for finished runs (``POST .../rerun`` answers 409 ``still_running``), so the
visibility listing that finds them is made only once the run has closed. A client interceptor on a
real Temporal client counts the listings the service makes.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.client import Client, Interceptor, ListWorkflowsInput, OutboundInterceptor, WorkflowExecutionStatus

from waterflow_core.temporal import connect
from waterflow_server.api.nodes import NodeDirectory
from waterflow_server.api.runs import RunService

Api = Any  # the `api` fixture of conftest.py


class CountListings(Interceptor):
    """Counts the client's visibility listings."""

    def __init__(self) -> None:
        self.listings = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        counter = self

        class Counting(OutboundInterceptor):
            def list_workflows(self, input: ListWorkflowsInput) -> Any:
                counter.listings += 1
                return super().list_workflows(input)

        return Counting(next)


async def test_a_running_run_is_read_without_a_reruns_scan(api: Api, temporal_dev: Any, parked_workflow: str) -> None:
    run_id = f"polled-{uuid.uuid4().hex[:10]}"
    created = await api.http.post("/v1/workflows", json={"workflow": parked_workflow, "id": run_id})
    assert created.status_code == 201, created.text
    counter = CountListings()
    plain = await connect(temporal_dev.address, temporal_dev.namespace)
    client = Client(
        plain.service_client, namespace=plain.namespace, data_converter=plain.data_converter, interceptors=[counter]
    )
    runs = RunService(client, NodeDirectory(client))
    try:
        for _ in range(3):
            detail = await runs.get(run_id)
            assert detail.status == "running" and detail.reruns == []
        assert counter.listings == 0
    finally:
        await api.http.delete(f"/v1/workflows/{run_id}")
    handle = client.get_workflow_handle(run_id)
    for _ in range(300):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            break
        await asyncio.sleep(0.1)
    detail = await runs.get(run_id)
    assert detail.status == "cancelled" and detail.reruns == []
    assert counter.listings >= 1  # a finished run is looked up: the counter does see listings
