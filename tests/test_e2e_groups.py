"""Acceptance 2: two agents in different groups; each step runs only on its group's agent."""

from __future__ import annotations

import textwrap
from pathlib import Path

from waterflow_sdk import Client
from waterflow_testing import unique_name


def test_steps_run_only_on_their_groups_agent(start_server, start_agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    web, db = unique_name("web"), unique_name("db")
    web_agent = start_agent(unique_name("agent-web"), [web])
    db_agent = start_agent(unique_name("agent-db"), [db])
    server = start_server()
    workflow = textwrap.dedent(
        f"""
        name: two-groups
        jobs:
          migrate:
            runs-on: {db}
            steps:
              - id: where
                uses: exec/shell
                with: {{command: 'echo "cwd=$PWD" >> "$WATERFLOW_OUTPUT"'}}
              - id: again
                uses: exec/shell
                with: {{command: 'echo "cwd=$PWD" >> "$WATERFLOW_OUTPUT"'}}
          deploy:
            needs: [migrate]
            runs-on: {web}
            steps:
              - id: where
                uses: exec/shell
                with: {{command: 'echo "cwd=$PWD" >> "$WATERFLOW_OUTPUT"'}}
          report:
            needs: [deploy]
            runs-on: {db}
            steps:
              - id: where
                uses: exec/shell
                with: {{command: 'echo "cwd=$PWD" >> "$WATERFLOW_OUTPUT"'}}
        """
    )
    with Client(server.url) as client:
        run = client.wait(client.submit(workflow).id, timeout=180, poll=0.2)
    assert run.succeeded, run.error
    expected = {"migrate": db_agent, "deploy": web_agent, "report": db_agent}
    for job in run.jobs:
        agent = expected[job.id]
        for step in job.steps:
            assert step.agent == agent.name, (job.id, step.id, step.agent)
            # The command ran in that agent's own work directory, on "its" server.
            assert step.outputs["cwd"].startswith(str(agent.workdir)), step.outputs
