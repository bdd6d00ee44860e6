"""Pure parts of the interpreter: matrix expansion, step ids, DAG statuses, retry options, conditions."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from waterflow_core.dsl.models import Defaults, Job, Retry, Step
from waterflow_core.interpreter import contexts, dag
from waterflow_core.interpreter.conditions import EvaluationError, Evaluator
from waterflow_core.interpreter.fanout import FanoutError, expand_matrix, label_instances
from waterflow_core.interpreter.retry import activity_options, merged_retry
from waterflow_core.interpreter.steptree import NestedBudget, StepTree
from waterflow_core.runs import JobProgress, StepProgress


def test_matrix_github_include_semantics() -> None:
    # The example from GitHub's documentation of matrix include.
    combos = expand_matrix(
        {
            "fruit": ["apple", "pear"],
            "animal": ["cat", "dog"],
            "include": [
                {"color": "green"},
                {"color": "pink", "animal": "cat"},
                {"fruit": "apple", "shape": "circle"},
                {"fruit": "banana"},
                {"fruit": "banana", "animal": "cat"},
            ],
        }
    )
    assert combos == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


def test_matrix_exclude_partial_match_and_include_only() -> None:
    combos = expand_matrix(
        {"os": ["linux", "mac", "win"], "v": ["1", "2"], "exclude": [{"os": "win"}, {"os": "mac", "v": "1"}]}
    )
    assert combos == [{"os": "linux", "v": "1"}, {"os": "linux", "v": "2"}, {"os": "mac", "v": "2"}]
    assert expand_matrix({"include": [{"a": 1}, {"a": 2}]}) == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ({"os": "linux"}, "matrix.os must be a list"),
        ({"os": []}, "empty list"),
        ({"os": ["a"], "exclude": [{"os": "a"}]}, "no combinations"),
        ({"a": list(range(20)), "b": list(range(20))}, "limit 256"),
    ],
)
def test_matrix_errors(matrix: dict, message: str) -> None:
    with pytest.raises(FanoutError, match=message):
        expand_matrix(matrix)


def test_instance_labels_are_unique_and_readable() -> None:
    pairs = [
        ("web-1", {"os": "linux", "n": 3}),
        (None, {"flag": True, "o": {"k": 1}}),
        (None, {"x": "a,b"}),
        (None, {"x": "a,b"}),
    ]
    labels = [i.label for i in label_instances(pairs)]
    assert labels == ["web-1,linux,3", 'true,{"k":1}', "a,b", "a,b~2"]


def _step(id: str | None = None) -> Step:
    return Step.model_validate({"uses": "exec/shell", **({"id": id} if id else {})})


def test_generated_step_ids() -> None:
    steps = [_step(), _step("step-1"), _step(), _step("STEP-3")]
    assert dag.step_ids(steps) == ["step-1-2", "step-1", "step-3-2", "STEP-3"]


def test_generated_nested_step_ids_avoid_the_ids_seen_from_outside() -> None:
    assert dag.step_ids([_step(), _step("b")], reserved=["Step-1", "x"]) == ["step-1-2", "b"]


def test_job_status_sees_transitive_failures() -> None:
    jobs = {
        "a": Job.model_validate({"runs-on": "q", "steps": [{"uses": "x/y"}]}),
        "b": Job.model_validate({"runs-on": "q", "needs": "a", "steps": [{"uses": "x/y"}]}),
        "c": Job.model_validate({"runs-on": "q", "needs": ["b"], "steps": [{"uses": "x/y"}]}),
    }
    ancestry = dag.ancestors(jobs)
    assert ancestry["c"] == {"a", "b"}
    results = {"a": "failure", "b": "skipped"}
    assert dag.job_status("c", results, ancestry, run_cancelled=False) == "failure"
    assert dag.job_status("c", results, ancestry, run_cancelled=True) == "cancelled"
    assert not dag.needs_succeeded(jobs["c"], results)
    assert dag.needs_succeeded(jobs["c"], {"b": "success"})


def test_retry_and_timeouts() -> None:
    defaults = Defaults.model_validate({"timeout": "10m", "retry": {"max-attempts": 3, "initial-interval": "2s"}})
    own = Retry.model_validate({"backoff": 3, "non-retryable": "Fatal"})
    merged = merged_retry(own, defaults.retry)
    assert (merged.max_attempts, merged.initial_interval, merged.backoff) == (3, 2.0, 3.0)
    options = activity_options(timeout=None, heartbeat_timeout=None, retry=own, defaults=defaults)
    assert options.start_to_close == timedelta(minutes=10)
    assert options.heartbeat == timedelta(seconds=30)
    assert options.retry_policy.maximum_attempts == 3
    assert options.retry_policy.non_retryable_error_types == ["Fatal", "WaterflowBadInput", "WaterflowUnknownNode"]
    bare = activity_options(timeout=5, heartbeat_timeout=None, retry=None, defaults=Defaults())
    assert bare.retry_policy.maximum_attempts == 1  # one attempt unless asked: ops steps are not idempotent
    assert bare.heartbeat == timedelta(seconds=5)  # never longer than the attempt
    options = activity_options(timeout=None, heartbeat_timeout=None, retry=None, defaults=Defaults())
    assert options.start_to_close == timedelta(hours=1)


def test_contexts_sent_to_agents_are_filtered() -> None:
    full = {
        "steps": {"Build": {"outputs": {"a": 1}}, "other": {}},
        "needs": {"db": {"result": "success"}},
        "inputs": {"version": "1", "secret-ish": "x"},
        "workflow": {"id": "w"},
        "secrets": {"nope": "never"},
    }
    refs = [("steps", "build"), ("inputs", "version"), ("workflow", "id"), ("secrets", "token"), ("server", "name")]
    assert contexts.select(full, refs) == {
        "inputs": {"version": "1"},
        "steps": {"Build": {"outputs": {"a": 1}}},
        "workflow": {"id": "w"},
    }
    assert contexts.select(full, [("needs", None)]) == {"needs": full["needs"]}


def test_summaries_are_bounded() -> None:
    summary = contexts.summarize_outputs({f"k{i}": "v" for i in range(60)} | {"k0": "x" * 2000})
    assert len(summary) == 51 and summary["k0"].endswith("… (2000 chars)")
    assert contexts.tail([str(i) for i in range(30)]) == [str(i) for i in range(10, 30)]


def test_expand_matrix_counts_before_building_and_bounds_include_exclude() -> None:
    started = time.monotonic()
    with pytest.raises(FanoutError, match="10000000000 combinations"):
        expand_matrix({f"k{i}": list(range(10)) for i in range(10)})
    with pytest.raises(FanoutError, match=r"matrix\.include has 5000 entries"):
        expand_matrix({"a": [1], "include": [{}] * 5000})
    assert time.monotonic() - started < 1


# --- conditions: the workflow-side evaluator ----------------------------------------------------


def test_evaluator_render_walks_nested_values_and_names_the_failing_place() -> None:
    ev = Evaluator()
    contexts = {"inputs": {"n": 2}}
    value = {"a": ["x", "$<< inputs.n >>"], "b": {"c": "v$<< inputs.n >>"}, "d": 1}
    assert ev.render(value, contexts, where="vars.v") == {"a": ["x", 2], "b": {"c": "v2"}, "d": 1}
    with pytest.raises(EvaluationError) as raised:
        ev.render({"a": [{"b": "$<< fromJSON('{') >>"}]}, contexts, where="vars.v")
    assert str(raised.value).startswith("vars.v.a[0].b: Error parsing JSON when evaluating fromJson: ")


@pytest.mark.parametrize(
    ("text", "status", "expected"),
    [
        (None, "success", True),
        (None, "failure", False),
        ("inputs.n == 2", "success", True),
        ("$<< inputs.n == 3 >>", "success", False),
        ("inputs.n", "failure", False),  # success() is implied
        ("$<< always() >>", "failure", True),
        ("inputs.empty", "success", False),  # GitHub truthiness: '' is false
        ("inputs.nan", "success", False),
    ],
)
def test_evaluator_condition(text: str | None, status: str, expected: bool) -> None:
    contexts = {"inputs": {"n": 2, "empty": "", "nan": float("nan")}}
    assert Evaluator().condition(text, contexts, status, where="jobs.a.if") is expected


def test_evaluator_condition_error_names_the_place() -> None:
    with pytest.raises(EvaluationError, match=r"^jobs\.a\.if: .*Unrecognized named-value: 'nope'"):
        Evaluator().condition("nope == 1", {}, "success", where="jobs.a.if")


def test_evaluator_references_in_document_order() -> None:
    value = {"a": "$<< inputs.X >> $<< needs.b.outputs.y >>", "b": ["$<< matrix >>", "plain"], "c": "$<< bad"}
    assert list(Evaluator().references(value)) == [("inputs", "x"), ("needs", "b"), ("matrix", None)]


@pytest.mark.parametrize(
    ("text", "status", "expected"),
    [
        ("inputs.n == 2", "success", True),
        ("$<< inputs.n >>", "failure", True),  # a value test: no success() is implied
        ("inputs.empty", "success", False),
        ("failure()", "failure", True),
        ("'false'", "success", True),  # GitHub truthiness: a non-empty string is true
    ],
)
def test_evaluator_truth(text: str, status: str, expected: bool) -> None:
    contexts = {"inputs": {"n": 2, "empty": ""}}
    assert Evaluator().truth(text, contexts, status, where="jobs.a.steps[0].with.if") is expected


def test_evaluator_truth_error_names_the_place() -> None:
    with pytest.raises(EvaluationError, match=r"^jobs\.a\.steps\[0\]\.with\.if: "):
        Evaluator().truth("fromJSON('{')", {}, "success", where="jobs.a.steps[0].with.if")


def _entries(*names: str) -> list[StepProgress]:
    return [StepProgress(id=name) for name in names]


def test_step_tree_lists_nested_entries_after_their_flow_step() -> None:
    job = JobProgress(id="j", steps=_entries("a", "loop", "b"))
    tree = StepTree(job)
    loop = job.steps[1]
    first = _entries("loop[0]/x", "loop[0]/inner")
    tree.add(loop, first)
    tree.add(first[1], _entries("loop[0]/inner/y"))
    tree.add(loop, _entries("loop[1]/x"))
    assert [s.id for s in job.steps] == ["a", "loop", "b"]  # listed when synced (progress is read)
    tree.sync()
    assert [s.id for s in job.steps] == ["a", "loop", "loop[0]/x", "loop[0]/inner", "loop[0]/inner/y", "loop[1]/x", "b"]
    tree.remove(first[1])  # and what it ran
    tree.sync()
    assert [s.id for s in job.steps] == ["a", "loop", "loop[0]/x", "loop[1]/x", "b"]
    tree.remove(job.steps[0])  # a job's own step is never removed
    tree.sync()
    assert [s.id for s in job.steps] == ["a", "loop", "loop[0]/x", "loop[1]/x", "b"]


def test_nested_budget_drops_the_oldest_finished_entries_run_wide() -> None:
    budget = NestedBudget(limit=3)
    jobs = [JobProgress(id=name, steps=_entries("loop")) for name in ("j", "k")]
    trees = [StepTree(job) for job in jobs]
    for n in range(3):
        for job, tree in zip(jobs, trees, strict=True):
            (entry,) = _entries(f"loop[{n}]/s")
            tree.add(job.steps[0], [entry])
            budget.finished(tree, entry)
    for tree in trees:
        tree.sync()
    assert [s.id for s in jobs[0].steps] == ["loop", "loop[2]/s"]
    assert [s.id for s in jobs[1].steps] == ["loop", "loop[1]/s", "loop[2]/s"]
