"""The flow nodes in the DSL: typed ``with:``, nested steps validated and placed like top-level
ones, expression scopes of nested lists (``loop``, ``steps``), and the document paths of every
step target."""

from __future__ import annotations

import textwrap

import pytest

from waterflow_core.dsl import load_workflow
from waterflow_core.dsl.models import FlowConditionWith, FlowLoopWith, FlowSleepWith, Workflow, step_targets
from waterflow_core.errors import WorkflowValidationError
from waterflow_core.runs import RunInput


def wf(steps: str, head: str = "") -> str:
    """A one-job workflow with ``steps`` (YAML list text, unindented)."""
    body = textwrap.indent(textwrap.dedent(steps).strip("\n"), " " * 6)
    return f"name: flow\n{textwrap.dedent(head)}jobs:\n  j:\n    runs-on: local\n    steps:\n{body}\n"


def errors(text: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(WorkflowValidationError) as info:
        load_workflow(text)
    return [(e.line, e.column, e.path, e.message) for e in info.value.errors]


FULL = wf(
    """
    - id: each
      uses: flow/loop
      with:
        items: $<< inputs.hosts >>
        max-parallel: '2'
        break-if: steps.check.outputs.ok == 'yes' && loop.index > 0
        steps:
          - id: restart
            uses: exec/shell
            with: {command: 'echo $<< loop.item >> $<< secrets.token >>'}
            retry: {max-attempts: 3}
            compensate: {uses: exec/shell, with: {command: 'undo $<< loop.item >>'}}
          - id: check
            uses: flow/condition
            with:
              if: steps.restart.outputs.code == '0'
              then: [{id: ok, uses: exec/shell, with: {command: 'echo $<< loop.parent >>'}}]
              else:
                - id: ok
                  uses: flow/sleep
                  with: {duration: $<< vars.pause >>}
    - id: wait
      uses: flow/sleep@1
      with: {until: '2030-01-31T08:00:00+02:00'}
    - uses: exec/shell
      with: {command: 'echo $<< steps.each.outputs.count >> $<< steps.wait.outputs.until >>'}
    """,
    head="""
    inputs:
      hosts: {type: array, default: '["a"]'}
    vars: {pause: 5s}
    """,
)


def test_flow_steps_load_with_their_typed_with() -> None:
    workflow = load_workflow(FULL)
    each, wait, plain = workflow.jobs["j"].steps
    assert isinstance(each.flow, FlowLoopWith)
    assert (each.flow.items, each.flow.max_parallel) == ("$<< inputs.hosts >>", 2)
    restart, check = each.flow.steps
    assert restart.retry is not None and restart.retry.max_attempts == 3
    assert isinstance(check.flow, FlowConditionWith)
    assert check.flow.if_ == "steps.restart.outputs.code == '0'"
    assert isinstance(check.flow.else_[0].flow, FlowSleepWith)
    assert check.flow.else_[0].flow.duration == "$<< vars.pause >>"
    assert isinstance(wait.flow, FlowSleepWith) and wait.flow.until == "2030-01-31T08:00:00+02:00"
    assert plain.flow is None
    # `with:` keeps the text as written; the run's snapshot carries that, and types it again.
    assert each.with_["max-parallel"] == "2"
    run = RunInput.plan(workflow, {})
    assert "flow" not in run.workflow["jobs"]["j"]["steps"][0]
    again = Workflow.model_validate(run.workflow)
    assert again == workflow


def test_literal_durations_and_items_are_typed() -> None:
    workflow = load_workflow(wf("""
        - uses: flow/sleep
          with: {duration: 1m30s}
        - uses: flow/loop
          with: {items: [1, two], steps: [{uses: exec/shell}]}
        """))
    sleep, loop = workflow.jobs["j"].steps
    assert isinstance(sleep.flow, FlowSleepWith) and sleep.flow.duration == 90.0
    assert isinstance(loop.flow, FlowLoopWith) and loop.flow.items == ["1", "two"]


def test_step_targets_walk_nested_steps_in_document_order() -> None:
    workflow = load_workflow(FULL)
    paths = [path for path, _ in step_targets(workflow)]
    base = ("jobs", "j", "steps")
    assert paths == [
        (*base, 0),
        (*base, 0, "with", "steps", 0),
        (*base, 0, "with", "steps", 0, "compensate"),
        (*base, 0, "with", "steps", 1),
        (*base, 0, "with", "steps", 1, "with", "then", 0),
        (*base, 0, "with", "steps", 1, "with", "else", 0),
        (*base, 1),
        (*base, 2),
    ]


# -- model errors, placed at their line and column ----------------------------------------------

MODEL_CASES = [
    (
        "nested-step-bad-duration",
        """
        - uses: flow/loop
          with:
            items: [a]
            steps:
              - uses: exec/shell
                timeout: 5 minutes
        """,
        "5 minutes", "jobs.j.steps[0].with.steps[0].timeout", "invalid duration '5 minutes'",
    ),
    (
        "nested-step-unknown-key",
        """
        - uses: flow/condition
          with:
            if: 'true'
            then:
              - uses: exec/shell
                retries: 3
        """,
        "retries", "jobs.j.steps[0].with.then[0].retries", "unknown key 'retries'",
    ),
    (
        "deep-nested-step-bad-uses",
        """
        - uses: flow/loop
          with:
            items: [a]
            steps:
              - uses: flow/condition
                with:
                  if: 'true'
                  then: [{uses: Exec/Shell}]
        """,
        "Exec/Shell", "then[0].uses", "'Exec/Shell' is not a node type",
    ),
    (
        "flow-with-unknown-key",
        """
        - uses: flow/loop
          with: {items: [a], steps: [{uses: exec/shell}], paralel: 2}
        """,
        "paralel", "jobs.j.steps[0].with.paralel", "unknown key 'paralel'",
    ),
    (
        "flow-needs-with",
        "- uses: flow/loop\n",
        "uses: flow/loop", "jobs.j.steps[0]", "flow/loop needs with: (items and steps)",
    ),
    (
        "unknown-flow-node",
        "- {uses: flow/retry, with: {x: 1}}\n",
        "flow/retry",
        "jobs.j.steps[0].uses",
        "unknown flow node 'flow/retry' (flow nodes: flow/approval, flow/condition, flow/loop",
    ),
    (
        "flow-major",
        "- {uses: flow/sleep@2, with: {duration: 1s}}\n",
        "flow/sleep@2", "uses", "no major version 2 (installed: @1)",
    ),
    (
        "retry-on-flow-step",
        "- {uses: flow/sleep, with: {duration: 1s}, retry: {max-attempts: 2}}\n",
        "{max-attempts", "jobs.j.steps[0].retry", "'retry' does not apply to flow/sleep: it runs in the workflow",
    ),
    (
        "compensate-on-flow-step",
        "- {uses: flow/sleep, with: {duration: 1s}, compensate: {uses: exec/shell}}\n",
        "{uses: exec", "jobs.j.steps[0].compensate", "'compensate' does not apply to flow/sleep",
    ),
    (
        "flow-compensation",
        "- {uses: exec/shell, compensate: {uses: flow/sleep, with: {duration: 1s}}}\n",
        "flow/sleep", "jobs.j.steps[0].compensate.uses", "a flow node cannot compensate",
    ),
    (
        "sleep-both",
        "- {uses: flow/sleep, with: {duration: 1s, until: '2030-01-01T00:00:00Z'}}\n",
        "{duration", "jobs.j.steps[0].with", "set exactly one of 'duration' and 'until'",
    ),
    (
        "sleep-until-without-offset",
        "- {uses: flow/sleep, with: {until: '2030-01-01T00:00:00'}}\n",
        "'2030", "jobs.j.steps[0].with.until", "has no UTC offset: add Z or e.g. +02:00",
    ),
    (
        "sleep-until-not-a-time",
        "- {uses: flow/sleep, with: {until: tomorrow}}\n",
        "tomorrow", "jobs.j.steps[0].with.until", "expected a timestamp such as 2030-01-31T08:00:00Z, got 'tomorrow'",
    ),
    (
        "items-plain-text",
        "- {uses: flow/loop, with: {items: inputs.hosts, steps: [{uses: exec/shell}]}}\n",
        "inputs.hosts", "jobs.j.steps[0].with.items", "items must be a list, or a $<< >> expression that gives one",
    ),
    (
        "empty-then",
        "- {uses: flow/condition, with: {if: 'true', then: []}}\n",
        "[]", "jobs.j.steps[0].with.then", "must have at least 1 entry",
    ),
    (
        "max-parallel-zero",
        "- {uses: flow/loop, with: {items: [a], max-parallel: 0, steps: [{uses: exec/shell}]}}\n",
        "0,", "jobs.j.steps[0].with.max-parallel", "must be at least 1",
    ),
]


@pytest.mark.parametrize(
    ("steps", "token", "path", "message"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES]
)
def test_flow_model_errors_are_placed(steps: str, token: str, path: str, message: str) -> None:
    """The error is where ``token`` first appears in the text (the value or key at fault)."""
    text = wf(steps)
    where = next((n, line.index(token) + 1) for n, line in enumerate(text.splitlines(), 1) if token in line)
    found = errors(text)
    matching = [e for e in found if e[2].endswith(path) and message in e[3]]
    assert matching, found
    assert matching[0][:2] == where, found


def test_too_many_literal_items() -> None:
    items = ", ".join(["x"] * 10_001)
    found = errors(wf(f"- {{uses: flow/loop, with: {{items: [{items}], steps: [{{uses: exec/shell}}]}}}}\n"))
    assert [e[2:] for e in found] == [("jobs.j.steps[0].with.items", "a loop runs at most 10000 items, got 10001")]


# -- static checks: what nested steps may reference ---------------------------------------------

CHECK_CASES = [
    (
        "loop-outside-a-loop",
        "- {uses: exec/shell, with: {command: 'echo $<< loop.item >>'}}\n",
        "loop is only available in the steps of a flow/loop (and its break-if)",
    ),
    (
        "loop-in-the-items-of-a-top-level-loop",
        "- {uses: flow/loop, with: {items: $<< loop.item >>, steps: [{uses: exec/shell}]}}\n",
        "loop is only available in the steps of a flow/loop",
    ),
    (
        "secrets-in-a-flow-with",
        "- {uses: flow/loop, with: {items: $<< secrets.hosts >>, steps: [{uses: exec/shell}]}}\n",
        "secrets cannot be used in flow/loop's with: it is evaluated in the workflow",
    ),
    (
        "secrets-in-a-condition",
        "- {uses: flow/condition, with: {if: secrets.x == 'y', then: [{uses: exec/shell}]}}\n",
        "secrets cannot be used in flow/condition's with:",
    ),
    (
        "later-top-level-step",
        """
        - uses: flow/loop
          with: {items: [a], steps: [{uses: exec/shell, with: {command: '$<< steps.late.outputs.x >>'}}]}
        - {id: late, uses: exec/shell}
        """,
        "step 'late' runs later in job 'j'",
    ),
    (
        "the-enclosing-flow-step",
        "- {id: each, uses: flow/loop, with: {items: [a], steps: [{uses: exec/shell, if: steps.each.outcome}]}}\n",
        "step 'each' has not finished here: this place is inside it",
    ),
    (
        "nested-id-from-outside",
        """
        - {id: each, uses: flow/loop, with: {items: [a], steps: [{id: inner, uses: exec/shell}]}}
        - {uses: exec/shell, with: {command: '$<< steps.inner.outputs.x >>'}}
        """,
        "step 'inner' runs inside jobs.j.steps[0] and is not visible here; read its results through that step's",
    ),
    (
        "later-nested-step",
        """
        - uses: flow/condition
          with:
            if: 'true'
            then:
              - {uses: exec/shell, if: steps.second.outcome == 'success'}
              - {id: second, uses: exec/shell}
        """,
        "step 'second' runs later in job 'j'",
    ),
    (
        "duplicate-nested-id",
        "- {uses: flow/loop, with: {items: [a], steps: [{id: s, uses: exec/shell}, {id: S, uses: exec/shell}]}}\n",
        "duplicate step id 'S' (step 1 is 's'; ids ignore case)",
    ),
    (
        "nested-id-taken-by-an-enclosing-list",
        """
        - {id: build, uses: exec/shell}
        - uses: flow/loop
          with: {items: [a], steps: [{id: build, uses: exec/shell}]}
        """,
        "duplicate step id 'build' (also jobs.j.steps[0], in an enclosing list)",
    ),
    (
        "break-if-reads-a-later-step",
        """
        - uses: flow/loop
          with: {items: [a], break-if: steps.late.outcome, steps: [{uses: exec/shell}]}
        - {id: late, uses: exec/shell}
        """,
        "step 'late' runs later in job 'j'",
    ),
    (
        "job-output-reads-a-nested-step",
        """
        - {uses: flow/loop, with: {items: [a], steps: [{id: inner, uses: exec/shell}]}}
        outputs: {x: '$<< steps.inner.outputs.x >>'}
        """,
        "step 'inner' runs inside jobs.j.steps[0]",
    ),
]


@pytest.mark.parametrize(("steps", "message"), [c[1:] for c in CHECK_CASES], ids=[c[0] for c in CHECK_CASES])
def test_nested_step_references_are_checked(steps: str, message: str) -> None:
    steps, _, outputs = textwrap.dedent(steps).partition("outputs:")
    text = wf(steps) + (f"    outputs:{outputs}" if outputs else "")
    found = errors(text)
    assert any(message in e[3] for e in found), found


def test_nested_references_that_are_fine() -> None:
    load_workflow(wf("""
        - {id: before, uses: exec/shell}
        - id: each
          uses: flow/loop
          with:
            items: [a, b]
            break-if: steps.check.outputs.ok && steps.before.outcome == 'success' && loop.index > 0
            steps:
              - id: build
                uses: exec/shell
                with: {command: 'echo $<< loop.item >> $<< steps.before.outputs.x >> $<< secrets.token >>'}
              - id: check
                uses: flow/condition
                with:
                  if: steps.build.outputs.ok == 'yes' && loop.item == 'a'
                  then:
                    - {id: deploy, uses: exec/shell, with: {command: 'echo $<< loop.parent >>'}}
                    - {uses: exec/shell, with: {command: 'echo $<< steps.deploy.outputs.x >>'}}
                  else:
                    - {id: deploy, uses: exec/shell}
        - uses: exec/shell
          with: {command: "echo $<< steps.each.outputs.results[0].build.outputs.x >>"}
        """))


def test_every_problem_of_nested_steps_is_reported_at_once() -> None:
    found = errors(wf("""
        - uses: flow/loop
          with:
            items: [a]
            steps:
              - {uses: exec/shell, timeout: never}
              - {uses: exec/shell, with: {command: '$<< loop.nope( >>'}}
              - {uses: flow/sleep}
        """))
    assert [(line, path) for line, _, path, _ in found] == [
        (10, "jobs.j.steps[0].with.steps[0].timeout"),
        (11, "jobs.j.steps[0]…[1].with.command"),  # long paths are shortened in the middle
        (12, "jobs.j.steps[0].with.steps[2]"),
    ]


def test_node_checker_reaches_nested_steps_and_places_their_problems() -> None:
    from waterflow_core.dsl import WithProblem

    def checker(uses: str, with_data: dict[str, object]) -> list[WithProblem]:
        if uses == "exec/shel":
            return [WithProblem((), "unknown node type 'exec/shel'", on="uses")]
        return [WithProblem((key,), f"no input {key!r}", on="key") for key in with_data if key == "comand"]

    text = wf(
        """
        - uses: flow/condition
          with:
            if: true
            then:
              - uses: flow/loop
                with:
                  items: [1]
                  steps:
                    - uses: exec/shel
                    - uses: exec/shell
                      with: {comand: echo}
        """
    )
    with pytest.raises(WorkflowValidationError) as info:
        load_workflow(text, node_checker=checker)
    placed = [(e.line, e.column, e.message) for e in info.value.errors]
    assert placed == [(14, 27, "unknown node type 'exec/shel'"), (16, 28, "no input 'comand'")]
