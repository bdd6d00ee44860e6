"""``start_run`` asks for Temporal's eager workflow start (ADR 0048).

With the interpreter worker on the starting client (as in ``waterflow server``) the first
workflow task comes back with the start; from a client without a worker (``--no-worker``, the
CLI) the run is started normally and a worker elsewhere picks it up by polling.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from waterflow_core.dsl import load_workflow
from waterflow_core.interpreter import start_run
from waterflow_core.runs import RunInput, RunProgress
from waterflow_core.temporal import connect

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Harness, harness

# What the SDK records on a handle whose start response carried the first workflow task.
EAGER_FLAG = "__temporal_eagerly_started"


@pytest.fixture
async def h(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    async for running in harness(temporal_client, task_queue):
        yield running


def one_step_run(h: Harness) -> RunInput:
    text = f"name: eager\njobs:\n  j:\n    runs-on: {h.queue}\n    steps: [{{uses: test/echo, with: {{msg: hi}}}}]\n"
    return RunInput.plan(load_workflow(text))


async def test_a_run_started_beside_its_worker_gets_its_first_task_with_the_start(h: Harness) -> None:
    run_id = f"eager-{uuid.uuid4().hex[:8]}"
    handle = await start_run(h.client, one_step_run(h), workflow_id=run_id, task_queue=h.wf_queue)
    assert getattr(handle, EAGER_FLAG) is True
    progress = await handle.result()
    assert isinstance(progress, RunProgress) and progress.status == "succeeded"


async def test_a_run_started_without_a_local_worker_is_polled_by_the_worker_elsewhere(h: Harness) -> None:
    config = h.client.config()
    service = h.client.service_client.config
    api_only = await connect(service.target_host, config["namespace"])  # no worker on this client
    run_id = f"eager-{uuid.uuid4().hex[:8]}"
    handle = await start_run(api_only, one_step_run(h), workflow_id=run_id, task_queue=h.wf_queue)
    assert getattr(handle, EAGER_FLAG) is False
    progress = await handle.result()
    assert progress.status == "succeeded"
