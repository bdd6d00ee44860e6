"""Issue 14's inventory end to end: an inventory file with per-server vars, real agent processes
running exec/shell, and a run with ``limit`` that runs on a subset of the group."""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from waterflow_core.agent_registry import list_agents
from waterflow_core.dsl import load_workflow
from waterflow_core.interpreter import build_interpreter_worker, start_run
from waterflow_core.inventory import InventoryServerGroupProvider
from waterflow_core.limit import parse_limit
from waterflow_core.runs import PROGRESS_QUERY, RunInput, RunProgress
from waterflow_testing import unique_name

pytest.importorskip("waterflow_agent")
pytest.importorskip("waterflow_node_shell")


async def test_inventory_vars_reach_the_agent_and_limit_runs_a_subset(
    temporal_client: Client, task_queue: str, start_agent: Any, tmp_path: Path
) -> None:
    prefix = unique_name("inv")
    web, db = f"{prefix}-web", f"{prefix}-db"
    names = [f"{prefix}-1", f"{prefix}-2", f"{prefix}-3"]
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        textwrap.dedent(
            f"""
            groups:
              {web}: [{names[0]}, {names[1]}, {names[2]}]
              {db}: [{names[2]}]
            servers:
              {names[0]}: {{vars: {{role: frontend}}}}
              {names[2]}:
                vars: {{role: "db; rm -rf /", tier: "2"}}
            """
        )
    )
    for name in names:
        start_agent(name, [web])
    for _ in range(150):
        if {a.name for a in await list_agents(temporal_client)} >= set(names):
            break
        await asyncio.sleep(0.2)
    text = f"""
name: inventory-e2e
jobs:
  roles:
    runs-on: {web}
    strategy: {{each-server: true}}
    steps:
      - id: say
        uses: exec/shell
        with:
          command: echo "role=$<< server.vars.role || 'none' >> on $<< server.name >> in $<< server.groups[0] >>"
"""
    limit = parse_limit(f"{names[0]},group:{db}")
    run = RunInput.plan(load_workflow(text), {}, source=text).model_copy(update={"limit": limit})
    provider = InventoryServerGroupProvider({"path": inventory}, client=temporal_client)
    async with build_interpreter_worker(temporal_client, task_queue, server_groups=provider):
        handle = await start_run(
            temporal_client, run, workflow_id=f"inv-{uuid.uuid4().hex[:10]}", task_queue=task_queue
        )
        await asyncio.wait_for(handle.result(), 90)
        progress = await handle.query(PROGRESS_QUERY, result_type=RunProgress)
    said = {j.instance: j.steps[0].outputs["stdout"] for j in progress.jobs if j.instance}
    # names[1] is in the group but not in the limit: it never ran. The agent's own name and
    # groups stand next to the inventory's vars; a var's shell metacharacters stay text.
    assert said == {
        names[0]: f"role=frontend on {names[0]} in {web}\n",
        names[2]: f"role=db; rm -rf / on {names[2]} in {web}\n",
    }
