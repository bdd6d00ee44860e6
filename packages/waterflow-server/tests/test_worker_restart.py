"""The server's interpreter worker is rebuilt after a fatal error instead of leaving runs stalled.

The SDK ends a worker whose polls keep failing in ways it cannot classify (after about a minute,
e.g. a Temporal that accepts connections but never answers); the real failure used here is the
worker's start-up check against a namespace that does not exist yet. Once it exists, the rebuilt
worker polls and a run completes, without restarting the host (issue 12, ADR 0046).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from waterflow_core.dsl import load_workflow
from waterflow_core.interpreter import start_run
from waterflow_core.runs import RunInput
from waterflow_core.temporal import connect
from waterflow_server.worker_host import InterpreterWorkerHost
from waterflow_testing import eventually, unique_name
from waterflow_testing.devserver import DevServer

pytestmark = pytest.mark.integration

NAP = """
name: nap
jobs:
  j:
    runs-on: nobody
    steps:
      - uses: flow/sleep
        with: {duration: 1s}
"""


async def test_a_crashed_interpreter_worker_is_rebuilt(
    temporal_dev: DevServer, temporal_client: Client, task_queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    namespace = unique_name("ns")
    client = await connect(temporal_dev.address, namespace)
    host = InterpreterWorkerHost(client, task_queue)
    caplog.set_level(logging.ERROR, logger="waterflow_server.worker_host")
    await host.start()
    try:
        # No such namespace: the worker fails its start-up check, a fatal error; the host lives on.
        await eventually(lambda: "restarting it in" in caplog.text)
        assert host.state in ("stopped", "running")
        await temporal_client.workflow_service.register_namespace(
            RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
        )
        run = RunInput.plan(load_workflow(NAP), {})
        run_id = unique_name("nap")

        async def started() -> WorkflowHandle[Any, Any] | None:
            try:
                return await start_run(client, run, workflow_id=run_id, task_queue=task_queue)
            except RPCError:
                return None  # the new namespace is not known everywhere yet

        handle: WorkflowHandle[Any, Any] | None = await eventually(
            started, lambda found: found is not None, timeout=120
        )
        assert handle is not None
        # Only a rebuilt worker can have run it: the first one failed for good.
        progress = await asyncio.wait_for(handle.result(), 120)
        assert progress.status == "succeeded", progress.error
        assert host.state == "running"
    finally:
        await host.stop()
