"""Acceptance 6: a step that fails twice succeeds with max-attempts 3; with 2 the run fails
with a message that names the step."""

from __future__ import annotations

import textwrap
from pathlib import Path

from waterflow_sdk import Client
from waterflow_testing import unique_name


def flaky(group: str, attempts: int) -> str:
    return textwrap.dedent(
        f"""
        name: flaky-{attempts}
        inputs:
          counter: {{type: string, required: true}}
        jobs:
          deploy:
            runs-on: {group}
            steps:
              - id: flaky-step
                uses: exec/shell
                retry: {{max-attempts: {attempts}, initial-interval: 100ms, backoff: 1}}
                with:
                  command: |
                    n=$(( $(cat "$<< inputs.counter >>" 2>/dev/null || echo 0) + 1 ))
                    echo "$n" > "$<< inputs.counter >>"
                    echo "attempt $n"
                    [ "$n" -ge 3 ] || {{ echo "not yet" >&2; exit 1; }}
        """
    )


def test_retry_until_success_and_until_exhausted(start_server, start_agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    with Client(server.url) as client:
        ok_counter, bad_counter = tmp_path / "ok", tmp_path / "bad"
        ok = client.submit(flaky(group, 3), inputs={"counter": str(ok_counter)})
        bad = client.submit(flaky(group, 2), inputs={"counter": str(bad_counter)})
        succeeded = client.wait(ok.id, timeout=180, poll=0.2)
        failed = client.wait(bad.id, timeout=180, poll=0.2)

    assert succeeded.succeeded, succeeded.error
    step = succeeded.jobs[0].steps[0]
    assert step.status == "success" and step.log_tail == ["attempt 3"]
    assert step.attempt == 3
    assert ok_counter.read_text().strip() == "3"  # two failures, then the success

    assert failed.status == "failed"
    assert bad_counter.read_text().strip() == "2"
    step = failed.jobs[0].steps[0]
    assert step.status == "failure" and step.attempt == 2
    assert failed.error and "deploy/flaky-step" in failed.error, failed.error
