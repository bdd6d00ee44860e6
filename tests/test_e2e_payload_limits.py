"""Data sent to a step is bounded: an activity input Temporal would refuse fails the step.

Three steps write 700 KB outputs and a fourth reads all three: its input (2.1 MB) passes
Temporal's 2 MB payload limit. The fourth step must fail with its path and the size, and the
run must end (failed) with its ``always()`` step run, instead of its workflow task failing in
a loop while the run shows ``running`` forever.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from waterflow_sdk import Client
from waterflow_testing import unique_name

BIG = "printf 'big=%s\\n' \"$(head -c 700000 /dev/zero | tr '\\0' x)\" >> \"$WATERFLOW_OUTPUT\""


def workflow(group: str, marker: Path) -> str:
    writers = "".join(
        f"""
              - id: {sid}
                uses: exec/shell
                with:
                  command: |
                    {BIG}"""
        for sid in "abc"
    )
    return textwrap.dedent(
        f"""
        name: big-outputs
        jobs:
          build:
            runs-on: {group}
            steps:{writers}
              - id: all
                uses: exec/shell
                with:
                  command: echo "$<< steps.a.outputs.big >>$<< steps.b.outputs.big >>$<< steps.c.outputs.big >>" | wc -c
              - id: cleanup
                if: always()
                uses: exec/shell
                with:
                  command: echo cleaned > {marker}
        """
    )


def test_an_input_over_the_payload_limit_fails_the_step_and_cleanup_runs(  # type: ignore[no-untyped-def]
    start_server, start_agent, tmp_path: Path
) -> None:
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    marker = tmp_path / "cleaned"
    with Client(server.url) as client:
        run = client.submit(workflow(group, marker))
        done = client.wait(run.id, timeout=120, poll=0.2)

    assert done.status == "failed", done.error
    steps = {s.id: s for s in done.jobs[0].steps}
    assert [steps[s].status for s in "abc"] == ["success"] * 3
    assert steps["all"].status == "failure"
    error = steps["all"].error or ""
    assert "build/all" in error and "bytes" in error, error
    assert done.error and "build/all" in done.error, done.error
    assert steps["cleanup"].status == "success"
    assert marker.read_text().strip() == "cleaned"
