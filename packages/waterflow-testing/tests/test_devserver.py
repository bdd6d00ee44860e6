"""The embedded Temporal: starts, applies retention, binds loopback only, survives restarts."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from waterflow_core.temporal import connect
from waterflow_testing.devserver import DevServer, DevServerError, find_temporal_binary, free_port


@workflow.defn(name="WaitForSignal")
class WaitForSignal:
    def __init__(self) -> None:
        self.value: str | None = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.value is not None)
        assert self.value is not None
        return self.value

    @workflow.signal
    def finish(self, value: str) -> None:
        self.value = value


async def _retention(client: Client) -> timedelta:
    response = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace="default")
    )
    return response.config.workflow_execution_retention_ttl.ToTimedelta()


def test_binary_is_found() -> None:
    assert find_temporal_binary().is_file()


async def test_session_server_has_thirty_days_retention(temporal_client: Client) -> None:
    assert await _retention(temporal_client) == timedelta(days=30)


async def test_session_server_listens_on_loopback_only(temporal_dev: DevServer) -> None:
    assert temporal_dev.address.startswith("127.0.0.1:")
    assert temporal_dev.ui_url is None  # headless in tests


async def test_restart_on_same_data_dir_keeps_workflows_and_address(tmp_path: Path) -> None:
    server = DevServer(tmp_path / "data", headless=True, retention=timedelta(days=7))
    queue = f"q-{uuid.uuid4().hex}"
    workflow_id = f"wf-{uuid.uuid4().hex}"
    try:
        await server.start()
        address = server.address
        client = await connect(server.address)
        assert await _retention(client) == timedelta(days=7)
        await client.start_workflow(WaitForSignal.run, id=workflow_id, task_queue=queue)

        await server.stop()
        assert not server.running
        await server.start()
        assert server.address == address

        client = await connect(server.address)
        handle = client.get_workflow_handle(workflow_id)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        async with Worker(
            client,
            task_queue=queue,
            workflows=[WaitForSignal],
            # pytest imports test modules under names the sandbox cannot re-import.
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            await handle.signal(WaitForSignal.finish, "after restart")
            assert await handle.result() == "after restart"
    finally:
        await server.stop()
    assert (tmp_path / "data" / "temporal.sqlite").is_file()


async def test_taken_port_is_reported(temporal_dev: DevServer, tmp_path: Path) -> None:
    server = DevServer(tmp_path, port=temporal_dev.port, headless=True)
    with pytest.raises(DevServerError, match="in use"):
        await server.start()
    assert not server.running


def test_blocking_start_and_ui_port(tmp_path: Path) -> None:
    ui_port = free_port()
    server = DevServer(tmp_path, ui_port=ui_port)
    server.start_blocking()
    try:
        assert server.running
        assert server.ui_url == f"http://127.0.0.1:{ui_port}"
    finally:
        server.stop_blocking()
    assert not server.running
