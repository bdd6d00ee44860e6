"""Acceptance 3: SIGKILL the agent mid-step; a new agent takes the step over, the run succeeds,
and the steps that had completed are not executed again (their side-effect files say so)."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from waterflow_sdk import Client
from waterflow_testing import unique_name


def wait_for_file(path: Path, lines: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and len(path.read_text().splitlines()) >= lines):
        assert time.monotonic() < deadline, f"{path} never reached {lines} line(s)"
        time.sleep(0.05)


def test_a_new_agent_takes_over_after_kill_9(start_server, start_agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    first = start_agent(unique_name("agent"), [group])
    server = start_server()
    marks = tmp_path / "marks"
    marks.mkdir()
    workflow = textwrap.dedent(
        f"""
        name: survive-agent-crash
        inputs:
          dir: {{type: string, required: true}}
        jobs:
          work:
            runs-on: {group}
            steps:
              - id: before
                uses: exec/shell
                with: {{command: 'echo ran >> "$<< inputs.dir >>/before"'}}
              - id: slow
                uses: exec/shell
                # A dead agent is noticed when its heartbeats stop; then the step is retried.
                heartbeat-timeout: 3s
                retry: {{max-attempts: 3, initial-interval: 200ms}}
                with:
                  command: |
                    echo attempt >> "$<< inputs.dir >>/slow"
                    if [ "$(wc -l < "$<< inputs.dir >>/slow")" -ge 2 ]; then exit 0; fi
                    while [ ! -f "$<< inputs.dir >>/release" ]; do sleep 0.1; done
              - id: after
                uses: exec/shell
                with: {{command: 'echo ran >> "$<< inputs.dir >>/after"'}}
        """
    )
    with Client(server.url) as client:
        ref = client.submit(workflow, inputs={"dir": str(marks)})
        wait_for_file(marks / "slow", 1)  # the slow step is running on the first agent
        first.kill()
        first.wait()
        second = start_agent(unique_name("agent"), [group])
        try:
            run = client.wait(ref.id, timeout=180, poll=0.2)
        finally:
            (marks / "release").touch()  # lets the first attempt's orphaned shell end
    assert run.succeeded, run.error
    steps = {step.id: step for _, step in run.steps()}
    assert (marks / "before").read_text().splitlines() == ["ran"]  # not executed again
    assert (marks / "slow").read_text().splitlines() == ["attempt", "attempt"]
    assert (marks / "after").read_text().splitlines() == ["ran"]
    assert steps["before"].agent == first.name
    assert steps["slow"].agent == second.name
    assert steps["after"].agent == second.name
