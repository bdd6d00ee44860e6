"""An agent rebuilds a worker that failed, without a restart (issue 12, ADR 0046).

A worker that fails its start-up check (its namespace cannot be described: Temporal away or not
answering) kept its task queue registered in the SDK, so every rebuilt worker of that queue was
refused and the agent never polled again. Here the namespace does not exist when the agent
starts: its workers fail, are rebuilt with backoff, and once the namespace exists the agent runs
a step routed to its group.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from waterflow_core.steptask import StepResult, StepTask
from waterflow_core.temporal import connect
from waterflow_testing import AgentProcess, eventually, unique_name
from waterflow_testing.devserver import DevServer
from waterflow_testing.harness import StepHarness, make_step

pytestmark = pytest.mark.integration


async def _started(harness: StepHarness, step: StepTask, queue: str) -> WorkflowHandle[Any, StepResult] | None:
    try:
        return await harness.start(step, queue)
    except RPCError:
        return None


async def test_failed_workers_are_rebuilt_until_they_poll(
    temporal_dev: DevServer, temporal_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> None:
    namespace = unique_name("ns")
    group = unique_name("group")
    agent = AgentProcess(
        unique_name("agent"), [group], address=temporal_dev.address, namespace=namespace,
        workdir=tmp_path_factory.mktemp("agent"),
    ).start()
    try:
        await asyncio.to_thread(agent.wait_for_output, r"worker for .* failed .*; restarting in")
        await temporal_client.workflow_service.register_namespace(
            RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
        )
        client = await connect(temporal_dev.address, namespace)
        harness = StepHarness(client, unique_name("harness"))
        step = make_step("exec/shell", {"command": "echo rebuilt"})
        # A new namespace takes a few seconds to be known to every Temporal service.
        handle = await eventually(lambda: _started(harness, step, group), lambda found: found is not None)
        assert handle is not None
        async with harness.serve():
            # The workers' backoff reaches 30 s: the rebuilt one polls within a minute or so.
            result = await asyncio.wait_for(handle.result(), 180)
        assert result.outputs["stdout"].strip() == "rebuilt"
        assert "overlapping" not in agent.output
    finally:
        await asyncio.to_thread(agent.stop)
