"""``POST /v1/plan`` and ``waterflow plan`` through a real server with real agents: each-server
lists exactly the group's live agents in their batches, and nothing runs (ADR 0038)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from waterflow_core.plan import Plan
from waterflow_sdk import Client
from waterflow_testing import unique_name

SECRET_VALUE = "plan-secret-value-never-shown"


def _workflow(group: str, marker: Path) -> str:
    return textwrap.dedent(
        f"""
        name: plan-e2e
        inputs:
          version: {{type: string, required: true}}
        jobs:
          prepare:
            runs-on: {group}
            steps:
              - id: mark
                uses: exec/shell
                with:
                  command: touch "{marker}/prepare-$<< inputs.version >>"
          rollout:
            needs: prepare
            runs-on: {group}
            strategy: {{each-server: true, batch: [1, 50%]}}
            steps:
              - id: deploy
                uses: exec/shell
                env: {{TOKEN: $<< secrets.TOKEN >>}}
                with:
                  command: touch "{marker}/$<< server.name >>-$<< inputs.version >>"
        """
    )


def _plan_listing(client: Client, text: str, wanted: set[str]) -> Plan:
    """The plan once the registry lists every agent in ``wanted`` (it is read through Temporal's
    visibility, which lags a little behind an agent reporting ready); bounded."""
    deadline = time.monotonic() + 60
    while True:
        plan = client.plan(text, inputs={"version": "7"})
        rollout = next(job for job in plan.jobs if job.id == "rollout")
        listed = {i.server for batch in rollout.batches for i in batch.instances}
        if listed >= wanted or time.monotonic() > deadline:
            return plan
        time.sleep(0.5)


def test_plan_lists_the_live_agents_in_batches_and_runs_nothing(  # type: ignore[no-untyped-def]
    start_server, start_agent, tmp_path: Path
) -> None:
    group = unique_name("plan")
    server = start_server(env={"WATERFLOW_SECRET_TOKEN": SECRET_VALUE})
    agents = sorted(start_agent(unique_name(f"web{n}"), [group]).name for n in range(3))
    start_agent(unique_name("elsewhere"), [unique_name("other")])
    marker = tmp_path / "ran"
    marker.mkdir()
    text = _workflow(group, marker)
    with Client(server.url) as client:
        before = [r.id for r in client.list_runs(page_size=500).runs]
        plan = _plan_listing(client, text, set(agents))
        after = [r.id for r in client.list_runs(page_size=500).runs]

        prepare, rollout = plan.jobs
        assert (prepare.id, prepare.servers) == ("prepare", agents)
        assert [[i.server for i in batch.instances] for batch in rollout.batches] == [
            agents[:1],
            agents[1:2],
            agents[2:],
        ]
        deploy = rollout.batches[1].instances[0].steps[0]
        assert deploy.with_["command"] == f'touch "{marker}/$<< server.name >>-7"'
        assert deploy.at_run_time == ["with.command"]
        assert deploy.env == {"TOKEN": "<secret TOKEN>"}
        assert prepare.batches[0].instances[0].steps[0].with_["command"] == f'touch "{marker}/prepare-7"'

        # Runs nothing: no run was started, no step ran on any agent.
        assert before == after
        assert list(marker.iterdir()) == []

        raw = httpx.post(f"{server.url}/v1/plan", json={"workflow": text, "inputs": {"version": "7"}}, timeout=30)
        assert raw.status_code == 200 and SECRET_VALUE not in raw.text
        assert raw.json()["jobs"][1]["batches"][0]["instances"][0]["steps"][0]["with"]["command"]
        refused = httpx.post(f"{server.url}/v1/plan", json={"workflow": text}, timeout=30)
        assert refused.status_code == 422 and "version" in refused.text

    cli = [sys.executable, "-m", "waterflow_sdk"]
    env = {**os.environ, "WATERFLOW_SERVER": server.url}
    flow = tmp_path / "flow.yaml"
    flow.write_text(text)
    shown = subprocess.run([*cli, "plan", str(flow), "-i", "version=7"], env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert f"job rollout on each server of group {group}, needs prepare: runs" in shown.stdout
    assert "batch [1, 50%]: batches of [1, 1, 1]" in shown.stdout
    for number, name in enumerate(agents, start=1):
        assert f"  batch {number}\n    server {name}\n      step deploy: exec/shell\n" in shown.stdout
    assert f'with.command: touch "{marker}/$<< server.name >>-7"  (at run time)' in shown.stdout

    as_json = subprocess.run([*cli, "plan", str(flow), "-i", "version=7", "-o", "json"], env=env, capture_output=True)
    assert Plan.model_validate(json.loads(as_json.stdout)).jobs[1].batches[2].instances[0].server == agents[2]

    local = subprocess.run([*cli, "plan", str(flow), "-i", "version=7", "--local"], capture_output=True, text=True)
    assert local.returncode == 0, local.stderr
    assert f"servers of group {group}: resolved at run time" in local.stdout

    missing = subprocess.run([*cli, "plan", str(flow)], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "version" in missing.stderr
    with Client(server.url) as client:
        assert [r.id for r in client.list_runs(page_size=500).runs] == before
    assert list(marker.iterdir()) == []


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "distributed-stack.yaml"


def test_plan_of_the_distributed_stack_lists_every_server_and_runs_nothing(  # type: ignore[no-untyped-def]
    start_server, start_agent, tmp_path: Path
) -> None:
    server = start_server()
    db = start_agent(unique_name("db"), ["db"]).name
    web = sorted(start_agent(unique_name(f"web{n}"), ["web"]).name for n in range(3))
    with Client(server.url) as client:
        before = [r.id for r in client.list_runs(page_size=500).runs]
        deadline = time.monotonic() + 60
        while True:  # the registry lags a little behind agents reporting ready; bounded
            plan = client.plan(EXAMPLE, inputs={"dir": str(tmp_path)})
            db_job, web_job = plan.jobs
            listed = [i.server for batch in web_job.batches for i in batch.instances]
            if (set(web) <= set(listed) and db in (db_job.servers or [])) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        live = {a.name: a.groups for a in client.agents() if a.alive}
        after = [r.id for r in client.list_runs(page_size=500).runs]

    assert [job.id for job in plan.jobs] == ["db", "web"]
    assert db_job.servers == sorted(name for name, groups in live.items() if "db" in groups)
    assert db in db_job.servers
    # Every live web server, each with the rollout's max-parallel 1 (no batches: one batch).
    assert listed == sorted(name for name, groups in live.items() if "web" in groups)
    assert set(web) <= set(listed)
    assert (web_job.each_server, web_job.max_parallel, len(web_job.batches)) == (True, 1, 1)
    first = web_job.batches[0].instances[0].steps[0]
    assert first.with_["file"] == f"{tmp_path}/web/docker-compose.yml"
    assert first.with_["project"] == "stack-web-$<< server.name >>"
    assert before == after
