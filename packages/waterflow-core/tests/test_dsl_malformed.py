"""A corpus of malformed workflows: each yields WorkflowValidationError with the right place."""

from __future__ import annotations

import textwrap

import pytest

from waterflow_core.dsl import load_workflow
from waterflow_core.errors import WorkflowValidationError


def wf(body: str) -> str:
    return textwrap.dedent(body).lstrip("\n")


OK_JOB = """\
jobs:
  a:
    runs-on: local
    steps:
      - uses: exec/shell
        with: {command: 'true'}
"""

# (id, text, expected (line, column), substring of that error's message)
CASES: list[tuple[str, str | bytes, tuple[int, int], str]] = [
    ("not-a-mapping", "- a\n- b\n", (1, 1), "must be a mapping"),
    ("scalar-document", "hello\n", (1, 1), "must be a mapping"),
    ("empty-document", "", (1, 1), ""),
    ("missing-name", OK_JOB, (1, 1), "missing required key 'name'"),
    ("missing-jobs", "name: x\n", (1, 1), "missing required key 'jobs'"),
    ("empty-jobs", "name: x\njobs: {}\n", (2, 7), "at least 1"),
    ("bad-indentation", "name: x\njobs:\n  a:\n    runs-on: local\n   steps: []\n", (5, 4), ""),
    ("tab-indent", "name: x\njobs:\n\ta: {}\n", (3, 1), "tab"),
    ("duplicate-key", "name: x\nname: y\n" + OK_JOB, (2, 1), "duplicate key 'name'"),
    ("duplicate-nested-key", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            runs-on: other
            steps: [{uses: exec/shell}]
        """), (5, 5), "duplicate key 'runs-on'"),
    ("anchor", "name: &n x\n" + OK_JOB, (1, 7), "anchor"),
    ("alias", "name: x\nvars: {a: &v 1, b: *v}\n" + OK_JOB, (2, 11), "anchor"),
    ("tag", "name: !!str x\n" + OK_JOB, (1, 7), "tag"),
    ("custom-tag", "name: x\nvars: {a: !secret x}\n" + OK_JOB, (2, 11), "tag"),
    ("multiple-documents", "name: x\n" + OK_JOB + "---\nname: y\n", (8, 1), ""),
    ("unknown-top-key", "name: x\nnmae: y\n" + OK_JOB, (2, 1), "unknown key 'nmae'"),
    ("unknown-job-key", wf("""
        name: x
        jobs:
          a:
            runs_on: local
            steps: [{uses: exec/shell}]
        """), (4, 5), "did you mean 'runs-on'"),
    ("unknown-step-key", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                witth: {command: x}
        """), (7, 9), "unknown key 'witth'"),
    ("missing-runs-on", wf("""
        name: x
        jobs:
          a:
            steps: [{uses: exec/shell}]
        """), (4, 5), "missing required key 'runs-on'"),
    ("missing-uses", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - with: {command: x}
        """), (6, 9), "missing required key 'uses'"),
    ("empty-steps", "name: x\njobs:\n  a:\n    runs-on: local\n    steps: []\n", (5, 12), "at least 1"),
    ("steps-not-list", "name: x\njobs:\n  a:\n    runs-on: local\n    steps: nope\n", (5, 12), "list"),
    ("bad-uses", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps: [{uses: 'Exec Shell'}]
        """), (5, 20), "node type"),
    (
        "bad-job-id",
        "name: x\njobs:\n  'bad id':\n    runs-on: l\n    steps: [{uses: a/b}]\n",
        (3, 3),
        "'bad id' is not a valid identifier",
    ),
    ("wrong-type-bool", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            continue-on-error: maybe
            steps: [{uses: exec/shell}]
        """), (5, 24), "boolean"),
    ("wrong-type-int", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                retry: {max-attempts: many}
        """), (7, 31), "integer"),
    ("wrong-type-env-map", wf("""
        name: x
        env: {A: {nested: map}}
        """) + OK_JOB, (2, 10), "string"),
    ("bad-duration", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                timeout: 5 minutes
        """), (7, 18), "invalid duration"),
    ("zero-duration", "name: x\ntimeout: 0s\n" + OK_JOB, (2, 10), "greater than zero"),
    ("duplicate-unit-duration", "name: x\ntimeout: 1m1m\n" + OK_JOB, (2, 10), "invalid duration"),
    ("bad-input-type", "name: x\ninputs:\n  v: {type: text}\n" + OK_JOB, (3, 13), "string"),
    ("bad-input-default", "name: x\ninputs:\n  n: {type: number, default: lots}\n" + OK_JOB, (3, 6), "number"),
    ("unknown-context", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {command: 'echo $<< github.sha >>'}
        """), (7, 35), "'github'"),
    ("secrets-in-if", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                if: secrets.token == 'x'
        """), (7, 13), "secrets can only be used"),
    ("forward-step-reference", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {command: 'echo $<< steps.later.outputs.x >>'}
              - id: later
                uses: exec/shell
        """), (7, 35), "runs later"),
    ("unknown-step-reference", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - id: first
                uses: exec/shell
              - uses: exec/shell
                if: steps.frist.outcome == 'success'
        """), (9, 13), "unknown step 'frist'"),
    ("needs-not-declared", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps: [{uses: exec/shell}]
          b:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {command: 'echo $<< needs.a.outputs.x >>'}
        """), (10, 35), "not in this job's needs"),
    ("unknown-needs", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            needs: [ghost]
            steps: [{uses: exec/shell}]
        """), (5, 13), "unknown job 'ghost'"),
    ("self-needs", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            needs: a
            steps: [{uses: exec/shell}]
        """), (5, 12), "cannot need itself"),
    ("cycle", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            needs: [c]
            steps: [{uses: exec/shell}]
          b:
            runs-on: local
            needs: [a]
            steps: [{uses: exec/shell}]
          c:
            runs-on: local
            needs: [b]
            steps: [{uses: exec/shell}]
        """), (5, 13), "dependency cycle: a -> c -> b -> a"),
    ("duplicate-step-id", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - id: s
                uses: exec/shell
              - id: s
                uses: exec/shell
        """), (8, 13), "duplicate step id 's'"),
    ("expression-syntax", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {command: 'echo $<< inputs. >>'}
        """), (7, 41), "unexpected end"),
    ("unterminated-expression", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {command: 'echo $<< 1 + '}
        """), (7, 31), "unterminated"),
    ("unknown-function", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                if: hashFiles('x')
        """), (7, 13), "hashfiles"),
    ("wrong-arity", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                if: contains('a')
        """), (7, 13), "contains"),
    ("undeclared-input", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {command: 'echo $<< inputs.nope >>'}
        """), (7, 35), "unknown input 'nope'"),
    ("matrix-without-matrix", wf("""
        name: x
        jobs:
          a:
            runs-on: $<< matrix.group >>
            steps: [{uses: exec/shell}]
        """), (4, 18), "matrix is only available"),
    ("bad-matrix", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            strategy: {matrix: {include: nope}}
            steps: [{uses: exec/shell}]
        """), (5, 24), "include"),
    ("non-utf8", b"name: x\njobs: \xff\xfe\n", (2, 7), "UTF-8"),
    ("complex-key", "name: x\n? [a, b]\n: c\n" + OK_JOB, (2, 3), ""),
    ("unterminated-quote", "name: x\ndescription: 'oops\n" + OK_JOB.replace("'", ""), (9, 1), "quoted scalar"),
    ("deeply-nested", "name: x\nvars: " + "[" * 200 + "]" * 200 + "\n" + OK_JOB, (2, 70), "nesting"),
    ("list-after-comment", "# a comment\n- a\n", (2, 1), "must be a mapping"),
    ("expression-in-block-literal", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                with:
                  command: |
                    echo one
                    echo $<< github.sha >>
        """), (10, 22), "'github'"),
    ("expression-after-escapes", wf("""
        name: x
        jobs:
          a:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {command: "a\\tb\\u00e9 $<< github.sha >>"}
        """), (7, 41), "'github'"),
    (
        "needs-not-text",
        "name: x\njobs:\n  a: {runs-on: l, needs: [[b]], steps: [{uses: a/b}]}\n",
        (3, 27),
        "got a list",
    ),
    ("huge-document", "name: x\nvars:\n" + "".join(f"  k{i}: {'v' * 100}\n" for i in range(12000)), (1, 1), "limit"),
]


@pytest.mark.parametrize(("text", "where", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_workflow_is_placed(text: str | bytes, where: tuple[int, int], message: str) -> None:
    with pytest.raises(WorkflowValidationError) as info:
        load_workflow(text)
    errors = info.value.errors
    assert errors, "a validation error must carry at least one item"
    places = [(e.line, e.column) for e in errors]
    assert where in places, f"expected an error at {where}, got {[str(e) for e in errors]}"
    if message:
        at = [e for e in errors if (e.line, e.column) == where]
        assert any(message.lower() in e.message.lower() for e in at), [str(e) for e in errors]


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 40


def test_all_problems_are_reported_at_once() -> None:
    text = wf("""
        name: x
        timeout: soon
        jobs:
          a:
            runs-on: local
            needs: [ghost]
            steps:
              - uses: exec/shell
                if: steps.nope.outcome
                retry: {max-attempts: 0}
        """)
    with pytest.raises(WorkflowValidationError) as info:
        load_workflow(text)
    paths = {e.path for e in info.value.errors}
    assert {"timeout", "jobs.a.needs[0]", "jobs.a.steps[0].if", "jobs.a.steps[0].retry.max-attempts"} <= paths
