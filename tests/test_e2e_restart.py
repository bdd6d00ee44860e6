"""Acceptance 4: stop the API server and the Temporal dev server mid-run, start both again on
the same data directory; the run carries on and completes, and nothing ran twice."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from waterflow_sdk import Client
from waterflow_testing import AgentProcess, unique_name
from waterflow_testing.devserver import DevServer
from waterflow_testing.server import ServerProcess


def wait_for_file(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_run_survives_server_and_temporal_restart(tmp_path: Path) -> None:
    temporal = DevServer(tmp_path / "temporal", headless=True)
    temporal.start_blocking()
    group = unique_name("group")
    agent = AgentProcess(
        unique_name("agent"), [group], address=temporal.address, workdir=tmp_path / "agent"
    ).start()
    server = ServerProcess(temporal.address, workdir=tmp_path / "server").start()
    marks = tmp_path / "marks"
    marks.mkdir()
    workflow = textwrap.dedent(
        f"""
        name: survive-restart
        inputs:
          dir: {{type: string, required: true}}
        jobs:
          work:
            runs-on: {group}
            steps:
              - id: first
                uses: exec/shell
                with: {{command: 'echo ran >> "$<< inputs.dir >>/first"'}}
              - id: wait
                uses: exec/shell
                with:
                  command: |
                    echo started >> "$<< inputs.dir >>/wait"
                    while [ ! -f "$<< inputs.dir >>/release" ]; do sleep 0.1; done
          finish:
            needs: [work]
            runs-on: {group}
            steps:
              - id: last
                uses: exec/shell
                with: {{command: 'echo ran >> "$<< inputs.dir >>/last"'}}
        """
    )
    try:
        agent.wait_ready()
        server.wait_ready()
        with Client(server.url) as client:
            ref = client.submit(workflow, inputs={"dir": str(marks)})
        wait_for_file(marks / "wait")  # mid-run: the second step is running

        assert server.stop() == 0
        temporal.stop_blocking()
        temporal.start_blocking()  # same data dir, same address
        server = ServerProcess(temporal.address, workdir=tmp_path / "server2").start().wait_ready()
        (marks / "release").touch()

        with Client(server.url) as client:
            run = client.wait(ref.id, timeout=180, poll=0.2)
        assert run.succeeded, run.error
        assert (marks / "first").read_text().splitlines() == ["ran"]
        assert (marks / "wait").read_text().splitlines() == ["started"]
        assert (marks / "last").read_text().splitlines() == ["ran"]
    finally:
        (marks / "release").touch()
        server.stop()
        agent.stop()
        temporal.stop_blocking()
