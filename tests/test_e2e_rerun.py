"""Acceptance (issue 14): a run where 2 of 5 servers fail, then `rerun --failed-only` runs those 2.

Five real agent processes in one group, a real ``waterflow server``, real shell steps. A server
fails while a marker file the test made for it exists; the test removes the markers before the
rerun. Each step appends the run's input to a file named for the server it ran on, so the files
say which servers ran steps, how often, and with which inputs.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx

from waterflow_sdk import Client
from waterflow_sdk.errors import WaterflowAPIError

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the fleet helper is a sibling module
from test_e2e_rolling import start_fleet


def workflow(group: str, tmp_path: Path) -> str:
    return textwrap.dedent(
        f"""
        name: fleet-deploy
        inputs:
          version: {{type: string, required: true}}
        jobs:
          deploy:
            runs-on: {group}
            strategy: {{each-server: true}}
            steps:
              - id: install
                uses: exec/shell
                with:
                  command: |
                    echo "install $<< inputs.version >>" >> "{tmp_path}/ran-$<< server.name >>"
                    echo "version=$<< inputs.version >>" >> "$WATERFLOW_OUTPUT"
              - id: check
                uses: exec/shell
                with:
                  command: |
                    echo "check $<< steps.install.outputs.version >>" >> "{tmp_path}/ran-$<< server.name >>"
                    test ! -e "{tmp_path}/broken-$<< server.name >>"
        """
    )


def ran(tmp_path: Path, name: str) -> list[str]:
    path = tmp_path / f"ran-{name}"
    return path.read_text().splitlines() if path.exists() else []


def test_rerun_failed_only_runs_only_the_failed_servers_with_the_same_inputs(  # type: ignore[no-untyped-def]
    start_server, start_agent, waterflow_cli, tmp_path: Path
) -> None:
    server = start_server()
    with Client(server.url) as client:
        group, names = start_fleet(start_agent, client, 5)
        bad = [names[1], names[3]]
        for name in bad:
            (tmp_path / f"broken-{name}").touch()
        source = tmp_path / "deploy.yaml"
        source.write_text(workflow(group, tmp_path))

        first = client.wait(client.submit(source, inputs={"version": "2.1"}).id, timeout=240, poll=0.3)
        assert first.status == "failed", first
        assert {j.instance: j.status for j in first.jobs if j.instance} == {
            n: ("failure" if n in bad else "success") for n in names
        }
        with httpx.Client() as http:
            still = http.post(f"{server.url}/v1/workflows/{first.id}/rerun", json={"from_step": "deploy/nope"})
        assert still.status_code == 422, still.text
        assert still.json()["errors"][0]["path"] == "from_step"

        for name in bad:
            (tmp_path / f"broken-{name}").unlink()
        cli = waterflow_cli(
            "rerun", first.id, "--failed-only", "--wait", "--poll", "0.3", server=server.url, timeout=240
        )
        assert cli.returncode == 0, cli.stdout + cli.stderr
        rerun_id = cli.stdout.splitlines()[0].strip()
        second = client.get(rerun_id)
        original = client.get(first.id)

    # Only the two failed servers ran steps again, with the original's inputs.
    for name in names:
        once = ["install 2.1", "check 2.1"]
        assert ran(tmp_path, name) == (once * 2 if name in bad else once), name
    assert second.status == "succeeded", second
    assert second.inputs == first.inputs == {"version": "2.1"}
    instances = {j.instance: j for j in second.jobs if j.instance}
    for name in names:
        job = instances[name]
        if name in bad:
            assert (job.status, job.succeeded_in) == ("success", None)
            assert [(s.status, s.agent) for s in job.steps] == [("success", name), ("success", name)]
        else:
            assert (job.status, job.succeeded_in) == ("skipped", first.id)
            assert [(s.status, s.succeeded_in) for s in job.steps] == [("skipped", first.id)] * 2
            assert job.steps[0].outputs["version"] == "2.1"
    # The links, both ways.
    assert second.rerun_of == first.id
    assert original.reruns == [rerun_id]
    status = waterflow_cli("status", rerun_id, server=server.url)
    assert f"rerun of {first.id}" in status.stdout
    assert f"[deploy/install#{names[0]}] skipped: succeeded in run {first.id}" in status.stdout, status.stdout


def test_rerun_is_idempotent_with_an_id_and_refused_while_running(  # type: ignore[no-untyped-def]
    start_server, start_agent, tmp_path: Path
) -> None:
    server = start_server()
    with Client(server.url) as client:
        group, _ = start_fleet(start_agent, client, 1)
        slow = workflow(group, tmp_path).replace('test ! -e "', 'sleep 3; test ! -e "')
        running = client.submit(slow, inputs={"version": "1"}).id
        try:
            client.rerun(running)
        except WaterflowAPIError as exc:
            refused: Any = exc
        else:
            raise AssertionError("a running run was rerun")
        assert refused.status == 409 and "still running" in refused.message
        client.wait(running, timeout=120, poll=0.3)

        first = client.rerun(running, new_id=f"{running}-again")
        assert first.created and first.id == f"{running}-again"
        done = client.wait(first.id, timeout=120, poll=0.3)
        assert done.status == "succeeded" and done.rerun_of == running
        # The same request again (an answer lost, say) starts nothing new.
        again = client.rerun(running, new_id=first.id)
        assert (again.created, again.id) == (False, first.id)
        # An id taken by a run that is not a rerun of this one is refused.
        try:
            client.rerun(first.id, new_id=running)
        except WaterflowAPIError as exc:
            assert exc.status == 409, exc
        else:
            raise AssertionError("a rerun took the id of an unrelated run")
        body = json.loads(httpx.get(f"{server.url}/v1/workflows/{running}", timeout=10).text)
        assert body["reruns"] == [first.id]
        # Malformed requests are refused with the field named, never a 500.
        url = f"{server.url}/v1/workflows/{running}/rerun"
        for sent, status, words in [
            ({"nope": 1}, 400, "nope"),
            ({"failed_only": "maybe"}, 400, "failed_only"),
            ({"id": "../../etc"}, 400, "id must be"),
            ([1], 400, "JSON object"),
        ]:
            answer = httpx.post(url, json=sent, timeout=10)
            assert answer.status_code == status and words in answer.json()["message"], (sent, answer.text)
        assert httpx.post(f"{server.url}/v1/workflows/no-such-run/rerun", json={}, timeout=10).status_code == 404
