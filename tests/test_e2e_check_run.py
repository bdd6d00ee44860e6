"""A check run (``waterflow submit FILE --check``, ADR 0041) through a real server and agent:
the step with ``check:`` runs only its check, the other step is skipped, no compensation runs,
and the run is marked as a check run in its detail, ``status`` and ``list``. Marker files say
what ran on the agent."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from waterflow_sdk import Client

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the fleet helper is a sibling module
from test_e2e_rolling import start_fleet


def workflow(group: str, tmp_path: Path) -> str:
    return textwrap.dedent(
        f"""
        name: check-deploy
        jobs:
          deploy:
            runs-on: {group}
            steps:
              - id: upgrade
                uses: exec/shell
                with: {{command: 'touch "{tmp_path}/upgraded"'}}
                check:
                  name: would upgrade
                  uses: exec/shell
                  with: {{command: 'touch "{tmp_path}/checked"; echo "diff=1 package" >> "$WATERFLOW_OUTPUT"'}}
                compensate:
                  uses: exec/shell
                  with: {{command: 'touch "{tmp_path}/compensated"'}}
              - id: restart
                uses: exec/shell
                with: {{command: 'touch "{tmp_path}/restarted"'}}
              - id: fail
                uses: exec/shell
                if: always()
                with: {{command: 'touch "{tmp_path}/failed"; exit 1'}}
        """
    )


def test_check_run_runs_only_the_checks(start_server, start_agent, waterflow_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = start_server()
    with Client(server.url) as client:
        group, _ = start_fleet(start_agent, client, 1)
        source = tmp_path / "deploy.yaml"
        source.write_text(workflow(group, tmp_path))

        cli = waterflow_cli("submit", str(source), "--check", "--wait", "--poll", "0.3", server=server.url, timeout=120)
        assert cli.returncode == 0, cli.stdout + cli.stderr
        run_id = cli.stdout.splitlines()[0].strip()
        run = client.get(run_id)
        listed = [summary for summary in client.list_runs().runs if summary.id == run_id]

    assert sorted(path.name for path in tmp_path.iterdir()) == ["checked", "deploy.yaml"]  # nothing else ran
    assert run.status == "succeeded" and run.check
    steps = {step.id: step for step in run.jobs[0].steps}
    assert (steps["upgrade"].status, steps["upgrade"].reason, steps["upgrade"].name) == (
        "success",
        "ran its check",
        "would upgrade",
    )
    assert steps["upgrade"].outputs["diff"] == "1 package"
    assert [(steps[s].status, steps[s].reason) for s in ("restart", "fail")] == [("skipped", "check run")] * 2
    assert run.compensations == []
    assert listed and listed[0].check
    assert "[deploy/restart] skipped: check run" in cli.stdout, cli.stdout

    status = waterflow_cli("status", run_id, server=server.url)
    assert "check run" in status.stdout
    plain = waterflow_cli("submit", str(source), "--wait", "--poll", "0.3", server=server.url, timeout=120)
    assert plain.returncode == 1  # the real run runs the steps themselves (the last one fails)
    assert {"upgraded", "restarted", "failed", "compensated"} <= {path.name for path in tmp_path.iterdir()}
