"""WaterflowRun with real agent processes running exec/shell: the whole runtime picture.

Temporal dev server ← interpreter worker (this process) → task queues → ``python -m
waterflow_agent`` children (``start_agent``), each with the exec/shell node installed.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError

from waterflow_core.dsl import load_workflow
from waterflow_core.interpreter import build_interpreter_worker, start_run
from waterflow_core.runs import PROGRESS_QUERY, RunInput, RunProgress
from waterflow_testing import unique_name

pytest.importorskip("waterflow_agent")
pytest.importorskip("waterflow_node_shell")


@pytest.fixture
async def wf_queue(temporal_client: Client, task_queue: str) -> AsyncIterator[str]:
    # The real default: each-server asks the agent registry in Temporal for live agents.
    async with build_interpreter_worker(temporal_client, task_queue):
        yield task_queue


async def start(client: Client, queue: str, text: str, **inputs: Any) -> WorkflowHandle[Any, RunProgress]:
    run = RunInput.plan(load_workflow(text), inputs)
    return await start_run(client, run, workflow_id=f"agents-{uuid.uuid4().hex[:10]}", task_queue=queue)


async def finish(handle: WorkflowHandle[Any, RunProgress]) -> tuple[RunProgress, BaseException | None]:
    error = None
    try:
        await asyncio.wait_for(handle.result(), 90)
    except WorkflowFailureError as exc:
        error = exc.cause
    return await handle.query(PROGRESS_QUERY, result_type=RunProgress), error


def history_text(node: Any) -> str:
    """Every string in a history, payload data decoded (history JSON base64-encodes payloads)."""
    out: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "data" and isinstance(value, str):
                    out.append(base64.b64decode(value).decode("utf-8", "replace"))
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            out.append(item)
    return "\n".join(out)


def step(progress: RunProgress, job_id: str, step_id: str, instance: str | None = None):
    entry = next(j for j in progress.jobs if j.id == job_id and j.instance == instance)
    return next(s for s in entry.steps if s.id == step_id)


async def test_jobs_across_groups_with_outputs_and_secrets(
    temporal_client: Client, wf_queue: str, start_agent: Any
) -> None:
    db, web = unique_name("db"), unique_name("web")
    db_agent = start_agent(unique_name("db-1"), [db], env={"WATERFLOW_SECRET_TOKEN": "s3cr3t-value"})
    web_agent = start_agent(unique_name("web-1"), [web])
    handle = await start(
        temporal_client,
        wf_queue,
        f"""
name: across-groups
inputs:
  version: {{type: string, required: true}}
jobs:
  db:
    runs-on: {db}
    steps:
      - id: migrate
        uses: exec/shell
        with:
          command: |
            echo "migrated to $<< inputs.version >> with token $<< secrets.TOKEN >>"
            echo "schema=42" >> "$WATERFLOW_OUTPUT"
    outputs:
      schema: $<< steps.migrate.outputs.schema >>
  web:
    needs: db
    runs-on: {web}
    steps:
      - id: deploy
        uses: exec/shell
        with:
          command: echo "deploying $<< inputs.version >> on schema $<< needs.db.outputs.schema >>"
""",
        version="1.2.3; rm -rf /",
    )
    progress, error = await finish(handle)
    assert error is None, error
    migrate = step(progress, "db", "migrate")
    assert migrate.agent == db_agent.name
    assert migrate.outputs["stdout"] == "migrated to 1.2.3; rm -rf / with token ***\n"
    deploy = step(progress, "web", "deploy")
    assert deploy.agent == web_agent.name
    assert deploy.outputs["stdout"] == "deploying 1.2.3; rm -rf / on schema 42\n"
    # Secrets never enter the run's history: only the reference travels.
    history = history_text((await handle.fetch_history()).to_json_dict())
    assert "s3cr3t-value" not in history
    assert "secrets.TOKEN" in history


async def test_failing_command_names_the_step(temporal_client: Client, wf_queue: str, start_agent: Any) -> None:
    group = unique_name("grp")
    start_agent(unique_name("a"), [group])
    handle = await start(
        temporal_client,
        wf_queue,
        f"""
name: failing
jobs:
  db:
    runs-on: {group}
    steps:
      - id: migrate
        uses: exec/shell
        with: {{command: 'echo oops >&2; exit 3'}}
        retry: {{max-attempts: 2, initial-interval: 100ms}}
""",
    )
    progress, error = await finish(handle)
    assert isinstance(error, ApplicationError)
    assert error.message.startswith("step db/migrate failed after 2 attempts: ")
    assert "3" in error.message
    assert progress.status == "failed"


async def test_each_server_over_live_agents_then_cancel_and_compensate(
    temporal_client: Client, wf_queue: str, start_agent: Any, tmp_path: Path
) -> None:
    group = unique_name("web")
    agents = sorted(
        [start_agent(unique_name("w1"), [group]), start_agent(unique_name("w2"), [group])], key=lambda a: a.name
    )
    marker = tmp_path / "undo.log"
    # Registration reaches visibility asynchronously; wait until both agents are listed.
    from waterflow_core.agent_registry import list_agents

    for _ in range(100):
        listed = [a.name for a in await list_agents(temporal_client) if group in a.groups]
        if len(listed) == 2:
            break
        await asyncio.sleep(0.2)
    handle = await start(
        temporal_client,
        wf_queue,
        f"""
name: rolling
jobs:
  web:
    runs-on: {group}
    strategy: {{each-server: true, max-parallel: 1}}
    steps:
      - id: up
        uses: exec/shell
        with: {{command: 'echo "host=$<< server.name >>" >> "$WATERFLOW_OUTPUT"'}}
        compensate:
          uses: exec/shell
          with:
            command: echo "undo $<< steps.up.outputs.host >> on $<< server.name >>" >> {marker}
      - id: wait
        uses: exec/shell
        with: {{command: sleep 60}}
        heartbeat-timeout: 3s
""",
    )
    first = agents[0].name
    for _ in range(300):
        progress = await handle.query(PROGRESS_QUERY, result_type=RunProgress)
        if any(j.instance == first and j.steps[1].status == "running" for j in progress.jobs):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the wait step never started: {progress}")
    assert step(progress, "web", "up", first).outputs["host"] == first
    assert step(progress, "web", "up", first).agent == first
    await handle.cancel()
    progress, error = await finish(handle)
    assert isinstance(error, CancelledError)
    assert progress.status == "cancelled"
    assert step(progress, "web", "wait", first).status == "cancelled"
    second = agents[1].name
    assert step(progress, "web", "up", second).status == "cancelled"  # never started (max-parallel 1)
    # The compensation ran on the agent that ran the step (its personal queue).
    assert marker.read_text() == f"undo {first} on {first}\n"
    assert [(c.id, c.instance, c.status, c.agent) for c in progress.compensations] == [
        ("up.compensate", first, "success", first)
    ]
