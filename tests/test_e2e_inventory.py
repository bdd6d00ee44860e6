"""each-server over an inventory group runs on exactly the inventory's servers; one without an agent fails.

Three real agents share a group; the server reads an inventory whose group `fleet` lists two of
them plus a server with no agent. The fan-out runs one instance on each of the two, none on the
agent the inventory does not list, and the server without an agent is an instance that fails at
once, without a hanging step (issue 14, ADR 0036).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from waterflow_sdk import Client
from waterflow_testing import unique_name


def test_each_server_uses_the_inventory(start_server, start_agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shared = unique_name("shared")
    listed = [start_agent(unique_name("inv"), [shared]) for _ in range(2)]
    unlisted = start_agent(unique_name("unlisted"), [shared])
    ghost = unique_name("ghost")
    fleet = unique_name("fleet")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        f"groups:\n  {fleet}: [{listed[0].name}, {ghost}, {listed[1].name}]\n"
        f"  {shared}: [{unlisted.name}]\n"
        f"servers:\n  {listed[0].name}:\n    vars: {{role: primary}}\n"
    )
    server = start_server(args=["--inventory", str(inventory)])
    workflow = textwrap.dedent(
        f"""
        name: inventory-e2e
        jobs:
          check:
            runs-on: {fleet}
            strategy: {{each-server: true}}
            steps:
              - id: where
                uses: exec/shell
                with: {{command: 'echo "server=$<< server.name >>" >> "$WATERFLOW_OUTPUT"'}}
        """
    )
    with Client(server.url) as client:
        run = client.wait(client.submit(workflow).id, timeout=180, poll=0.2)
    assert run.status == "failed", run
    assert run.error is not None
    assert run.error.startswith(
        f"job check failed on 1 of 3 servers ({ghost}): server {ghost} has no live agent (group {fleet})"
    ), run.error
    instances = {job.instance: job for job in run.jobs if job.id == "check" and job.instance is not None}
    assert sorted(instances) == sorted([listed[0].name, listed[1].name, ghost])
    assert instances[ghost].status == "failure"
    assert [step.status for step in instances[ghost].steps] == ["skipped"]
    ran_on = sorted(step.agent for job in instances.values() for step in job.steps if step.agent)
    assert ran_on == sorted(agent.name for agent in listed)
    for name in (listed[0].name, listed[1].name):
        [step] = instances[name].steps
        assert step.status == "success" and step.outputs["server"] == step.agent == name
