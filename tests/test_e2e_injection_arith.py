"""Bash arithmetic injection through a real server and agent (ADR 0019).

A value such as ``a[$(touch X)]`` runs ``touch X`` when bash evaluates it as arithmetic, even
from a quoted variable. In ``[[ -gt ]]``, ``let``, ``${s:offset}`` and ``for (( ))`` the step
fails before its command runs unless the value is an integer; integers work as before. In a
variable-name place (``printf -v``) the expression is refused whatever its value: at submit, where
the server has the node installed (and on the agent otherwise, tested in waterflow-core).
"""

from __future__ import annotations

import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest

from waterflow_sdk import Client
from waterflow_sdk.errors import WaterflowAPIError
from waterflow_testing import unique_name


def arithmetic(group: str) -> str:
    return textwrap.dedent(
        f"""
        name: arithmetic
        inputs:
          count: {{type: string, required: true}}
        jobs:
          shell:
            runs-on: {group}
            steps:
              - id: compare
                uses: exec/shell
                with:
                  command: |
                    if [[ "$<< inputs.count >>" -gt 5 ]]; then echo big; else echo small; fi
                    let "double = $<< inputs.count >> * 2"
                    s=abcdefghij
                    echo "double=$double tail=${{s:$<< inputs.count >>}}"
          relay:
            runs-on: {group}
            steps:
              - id: produce
                uses: exec/shell
                env: {{COUNT: $<< inputs.count >>}}
                with:
                  command: printf 'n=%s\\n' "$COUNT" >> "$WATERFLOW_OUTPUT"
              - id: consume
                uses: exec/shell
                with:
                  command: echo "next=$(( $<< steps.produce.outputs.n >> + 1 ))"
          script:
            runs-on: {group}
            steps:
              - id: loop
                uses: exec/script
                with:
                  script: |
                    for ((i = 0; i < $<< inputs.count >>; i++)); do :; done
                    echo "looped=$i"
        """
    )


def variable_name(group: str) -> str:
    return textwrap.dedent(
        f"""
        name: variable-name
        inputs:
          name: {{type: string, required: true}}
        jobs:
          assign:
            runs-on: {group}
            steps:
              - id: assign
                uses: exec/shell
                with:
                  command: |
                    echo start
                    printf -v $<< inputs.name >> '%s' value
        """
    )


def test_arithmetic_payloads_fail_the_step_before_it_runs(start_server, start_agent) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    target = Path(tempfile.gettempdir()) / f"pwned-{uuid.uuid4().hex}"
    payload = f"a[$(touch {target})]"
    with Client(server.url) as client:
        good, bad = (
            client.wait(client.submit(arithmetic(group), inputs={"count": count}).id, timeout=180, poll=0.2)
            for count in ("7", payload)
        )
        with pytest.raises(WaterflowAPIError) as refused:
            client.submit(variable_name(group), inputs={"name": "result"})
    assert not target.exists(), "an arithmetic payload ran"

    assert good.succeeded, good.error
    logs = {step.id: step.log_tail for _, step in good.steps()}
    assert logs["compare"] == ["big", "double=14 tail=hij"]
    assert logs["consume"] == ["next=8"]
    assert logs["loop"] == ["looped=7"]

    assert bad.status == "failed"
    steps = {step.id: step for _, step in bad.steps()}
    assert steps["produce"].status == "success"  # passing the value along as data is fine
    for step_id, expression, where in (
        ("compare", "$<< inputs.count >> (line 1)", "an operand of [[ -gt ]]"),
        ("consume", "$<< steps.produce.outputs.n >>", "bash arithmetic"),
        ("loop", "$<< inputs.count >> (line 1)", "bash arithmetic"),
    ):
        step = steps[step_id]
        assert step.status == "failure" and step.attempt == 1, (step_id, step.status, step.attempt)
        assert step.log_tail == [], step.log_tail  # the command never started
        assert step.error and f"{expression} must be an integer here, in {where}" in step.error, step.error
        assert payload not in step.error

    # Refused whatever the value, before anything runs, at the line of the command.
    assert refused.value.status == 422
    assert [(e.line, e.message) for e in refused.value.errors] == [
        (
            12,  # the `command: |` line
            "input 'command' of exec/shell: $<< inputs.name >> (line 2) cannot be used as a variable name "
            "(printf -v): bash evaluates a subscript in a name as arithmetic, which can run commands; "
            "write the name literally",
        )
    ]
