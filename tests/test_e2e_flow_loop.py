"""flow/loop and flow/condition through the whole stack: REST -> interpreter -> a real agent.

The nested steps are exec/shell steps on a real agent; their side-effect file says in which
order they ran and with which `loop.item` / `loop.index`. A workflow with a mistake in a nested
step is refused at submit with the mistake's line and column.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from waterflow_sdk import Client
from waterflow_sdk.errors import WaterflowAPIError
from waterflow_testing import unique_name


def test_loop_and_condition_on_a_real_agent(start_server, start_agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    marks = tmp_path / "marks"
    marks.mkdir()
    workflow = textwrap.dedent(
        f"""
        name: flow-e2e
        inputs:
          dir: {{type: string, required: true}}
          hosts: {{type: array, default: '["web-1", "web-2", "web-3"]'}}
        jobs:
          work:
            runs-on: {group}
            steps:
              - id: each
                uses: flow/loop
                with:
                  items: $<< inputs.hosts >>
                  max-parallel: 1
                  steps:
                    - id: visit
                      uses: exec/shell
                      with:
                        command: |
                          echo "$<< loop.index >> $<< loop.item >>" >> "$<< inputs.dir >>/visits"
                          echo "host=$<< loop.item >>" >> "$WATERFLOW_OUTPUT"
                    - id: odd
                      uses: flow/condition
                      with:
                        if: loop.index == 1
                        then:
                          - uses: exec/shell
                            with: {{command: 'echo "then $<< loop.item >>" >> "$<< inputs.dir >>/branches"'}}
                        else:
                          - uses: exec/shell
                            with: {{command: 'echo "else $<< loop.item >>" >> "$<< inputs.dir >>/branches"'}}
              - id: report
                uses: exec/shell
                with:
                  command: |
                    echo "hosts=$<< join(steps.each.outputs.results.*.visit.outputs.host) >>" >> "$WATERFLOW_OUTPUT"
        """
    )
    with Client(server.url) as client:
        ref = client.submit(workflow, inputs={"dir": str(marks)})
        run = client.wait(ref.id, timeout=180, poll=0.2)
    assert run.succeeded, run.error
    assert (marks / "visits").read_text().splitlines() == ["0 web-1", "1 web-2", "2 web-3"]
    assert (marks / "branches").read_text().splitlines() == ["else web-1", "then web-2", "else web-3"]
    steps = {step.id: step for _, step in run.steps()}
    assert steps["report"].outputs["hosts"] == "web-1,web-2,web-3"
    assert steps["each"].status == "success" and steps["each"].outputs["count"] == 3
    assert [s for s in steps if s.startswith("each[")] == [
        "each[0]/visit", "each[0]/odd", "each[0]/odd/step-1",
        "each[1]/visit", "each[1]/odd", "each[1]/odd/step-1",
        "each[2]/visit", "each[2]/odd", "each[2]/odd/step-1",
    ]
    assert steps["each[1]/odd"].outputs["branch"] == "then"


def test_nested_step_mistakes_are_refused_at_their_line(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server()
    workflow = textwrap.dedent(
        """\
        name: flow-mistakes
        jobs:
          work:
            runs-on: local
            steps:
              - uses: flow/loop
                with:
                  items: [a, b]
                  steps:
                    - uses: exec/shell
                      timeout: 5 minutes
                      with: {command: 'echo $<< loop.itme >>'}
                    - uses: flow/condition
                      with:
                        if: $<< secrets.token >>
                        then: [{uses: exec/shell, with: {command: 'echo $<< steps.late.outputs.x >>'}}]
              - {id: late, uses: exec/shell, with: {command: 'echo $<< loop.item >>'}}
        """
    )
    with Client(server.url) as client, pytest.raises(WaterflowAPIError) as raised:
        client.submit(workflow)
    assert raised.value.status == 422
    found = {(e.line, e.column): e.message for e in raised.value.errors}

    def at(token: str) -> tuple[int, int]:
        """Where ``token`` first appears in the workflow (1-based line and column)."""
        return next((n, line.index(token) + 1) for n, line in enumerate(workflow.splitlines(), 1) if token in line)

    assert "invalid duration '5 minutes'" in found[at("5 minutes")], found
    assert "secrets cannot be used in flow/condition's with:" in found[at("secrets.token")], found
    assert "step 'late' runs later in job 'work'" in found[at("steps.late")], found
    assert "loop is only available in the steps of a flow/loop" in found[at("loop.item >>'}}")], found
    assert len(found) == 4, found  # `loop.itme` is fine: loop holds any keys
