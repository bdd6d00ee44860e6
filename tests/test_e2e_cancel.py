"""Acceptance 5: cancelling a run during a long shell step kills the step's processes."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

from waterflow_sdk import Client
from waterflow_testing import pid_alive, unique_name


def test_cancel_kills_the_running_step(start_server, start_agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    pidfile = tmp_path / "pids"
    workflow = textwrap.dedent(
        f"""
        name: long-step
        inputs:
          pidfile: {{type: string, required: true}}
        jobs:
          work:
            runs-on: {group}
            steps:
              - id: long
                uses: exec/shell
                with:
                  command: |
                    sleep 600 &
                    echo "$$ $!" > "$<< inputs.pidfile >>"
                    wait
        """
    )
    with Client(server.url) as client:
        ref = client.submit(workflow, inputs={"pidfile": str(pidfile)})
        deadline = time.monotonic() + 120
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        pids = [int(p) for p in pidfile.read_text().split()]
        assert all(pid_alive(pid) for pid in pids)

        client.cancel(ref.id)
        run = client.wait(ref.id, timeout=120, poll=0.2)
        assert run.status == "cancelled"
        assert run.jobs[0].steps[0].status == "cancelled"

    deadline = time.monotonic() + 60
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in pids if pid_alive(pid)]
    for pid in survivors:  # do not leak a sleep 600 even when the test fails
        os.kill(pid, 9)
    assert not survivors, "the step's shell or its child outlived the cancellation"
