"""``run-as:`` in the DSL: a literal user name, on steps that run on an agent (ADR 0038)."""

from __future__ import annotations

import pytest

from waterflow_core.dsl.loader import load_workflow
from waterflow_core.errors import WorkflowValidationError

pytestmark = pytest.mark.unit


def _workflow(step: str) -> str:
    return f"name: w\njobs:\n  j:\n    runs-on: g\n    steps:\n{step}"


def test_run_as_is_read_into_the_step() -> None:
    wf = load_workflow(_workflow("      - uses: exec/shell\n        run-as: deploy\n        with: {command: id}\n"))
    assert wf.jobs["j"].steps[0].run_as == "deploy"


@pytest.mark.parametrize(
    "value",
    ["'$<< inputs.user >>'", "Root", "'0'", "'a b'", "'x;rm'", "'../etc'", "a" * 40],
)
def test_run_as_must_be_a_literal_user_name(value: str) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(_workflow(f"      - uses: exec/shell\n        run-as: {value}\n        with: {{command: id}}\n"))
    assert "jobs.j.steps[0].run-as" in str(caught.value)


def test_run_as_does_not_apply_to_flow_nodes() -> None:
    with pytest.raises(WorkflowValidationError, match="'run-as' does not apply to flow/sleep"):
        load_workflow(_workflow("      - uses: flow/sleep\n        run-as: deploy\n        with: {duration: 1s}\n"))
