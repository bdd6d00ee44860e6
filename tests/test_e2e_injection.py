"""Acceptance 7: a shell-injection payload in an input, in a step output and in with.command
expressions runs no command: it reaches the shell as data only."""

from __future__ import annotations

import tempfile
import textwrap
import uuid
from pathlib import Path

from waterflow_sdk import Client
from waterflow_testing import unique_name


def test_payloads_never_become_shell_text(start_server, start_agent) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    target = Path(tempfile.gettempdir()) / f"pwned-{uuid.uuid4().hex}"
    payload = f"'; touch {target}; echo '"
    sub_payload = f"$(touch {target})`touch {target}`"
    workflow = textwrap.dedent(
        f"""
        name: injection
        inputs:
          payload: {{type: string, required: true}}
        env:
          FROM_ENV: $<< inputs.payload >>
        jobs:
          try:
            runs-on: {group}
            steps:
              - id: single
                uses: exec/shell
                with: {{command: "echo '$<< inputs.payload >>'"}}
              - id: double
                uses: exec/shell
                with: {{command: 'echo "$<< inputs.payload >>"'}}
              - id: bare
                uses: exec/shell
                with: {{command: echo $<< inputs.payload >>}}
              - id: produce
                uses: exec/shell
                with:
                  command: |
                    printf 'echoed=%s\\n' "$FROM_ENV" >> "$WATERFLOW_OUTPUT"
              - id: consume
                uses: exec/shell
                with:
                  command: "echo $<< steps.produce.outputs.echoed >>; echo '$<< format('{{0}}', inputs.payload) >>'"
              - id: script
                uses: exec/script
                with:
                  script: |
                    echo $<< inputs.payload >>
        """
    )
    with Client(server.url) as client:
        runs = [
            client.wait(client.submit(workflow, inputs={"payload": text}).id, timeout=180, poll=0.2)
            for text in (payload, sub_payload)
        ]
    assert not target.exists(), "an expression value was executed as shell text"
    for run, text in zip(runs, (payload, sub_payload), strict=True):
        assert run.succeeded, run.error
        steps = {step.id: step for _, step in run.steps()}
        for step_id in ("single", "double", "bare", "script"):
            assert text in "\n".join(steps[step_id].log_tail), (step_id, steps[step_id].log_tail)
        assert steps["produce"].outputs["echoed"] == text
        assert "\n".join(steps["consume"].log_tail).count(text) == 2
