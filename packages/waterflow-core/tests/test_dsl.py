"""The DSL loader on valid workflows: shapes, typing, defaults, inputs, durations, schema."""

from __future__ import annotations

import functools
import json
import re
import textwrap
from pathlib import Path

import pytest

from waterflow_core.dsl import WithProblem, format_duration, load_workflow, parse_duration, resolve_inputs
from waterflow_core.dsl.schema import workflow_json_schema
from waterflow_core.errors import WorkflowValidationError
from waterflow_core.plugins import PluginManager
from waterflow_core.registry import NodeRegistry

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs"


def _doc_yaml_blocks() -> list[tuple[str, str]]:
    """Every ```yaml block of the docs, as a workflow.

    A block that is a list is a fragment of steps and is checked inside a one-job workflow;
    YAML of other tools (```yaml github-actions, ```yaml ansible) is not Waterflow's and is left out.
    """
    blocks = []
    for page in [*sorted(DOCS.rglob("*.md")), REPO / "README.md"]:
        for i, match in enumerate(re.finditer(r"```yaml\n(.*?)```", page.read_text(), re.S)):
            text = match.group(1)
            if _is_step_list(text):
                text = "name: fragment\njobs:\n  fragment:\n    runs-on: local\n    steps:\n" + textwrap.indent(
                    text, " " * 6
                )
            blocks.append((f"{page.relative_to(REPO)}#{i}", text))
    for example in sorted((REPO / "examples").glob("*.yaml")):
        blocks.append((str(example.relative_to(REPO)), example.read_text()))
    return blocks


def _is_step_list(text: str) -> bool:
    content = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return bool(content) and content[0].startswith("- ")


DOC_BLOCKS = _doc_yaml_blocks()


def test_docs_have_examples() -> None:
    assert len(DOC_BLOCKS) >= 4


@functools.cache
def installed_nodes() -> NodeRegistry:
    """The node catalog of the test environment, loaded as the server loads it."""
    return NodeRegistry.from_plugins(PluginManager(strict=False))


@pytest.mark.parametrize(("where", "text"), DOC_BLOCKS, ids=[b[0] for b in DOC_BLOCKS])
def test_every_yaml_example_in_the_docs_loads(where: str, text: str) -> None:
    # Each step's uses: and with: are checked against the real catalog, as the server checks them.
    workflow = load_workflow(text, source=where, node_checker=installed_nodes().check_with)
    assert workflow.jobs


def test_design_example_types() -> None:
    text = DOC_BLOCKS[[b[0] for b in DOC_BLOCKS].index("docs/reference/dsl.md#0")][1]
    wf = load_workflow(text)
    assert wf.name == "deploy-stack"
    assert wf.timeout == 7200
    assert wf.inputs["replicas"].default == 2
    assert wf.defaults.retry is not None and wf.defaults.retry.max_attempts == 3
    migrate = wf.jobs["db"].steps[0]
    assert migrate.retry is not None
    assert (migrate.retry.max_attempts, migrate.retry.initial_interval, migrate.retry.max_interval) == (5, 2, 60)
    assert migrate.timeout == 300 and migrate.compensate is not None
    web = wf.jobs["web"]
    assert web.needs == ["db"] and web.strategy is not None
    assert web.strategy.each_server and web.strategy.max_parallel == 1 and web.strategy.fail_fast
    assert web.steps[1].with_["expect-status"] == ["200"]
    assert web.steps[2].if_ == "$<< failure() >>"


def test_norway_problem_stays_text() -> None:
    wf = load_workflow(
        "name: x\nvars: {country: no, version: 1.10, flag: on, nothing: null}\n"
        "env: {A: yes}\njobs:\n  a:\n    runs-on: local\n    needs: []\n    steps: [{uses: a/b}]\n"
    )
    assert wf.vars == {"country": "no", "version": "1.10", "flag": "on", "nothing": "null"}
    assert wf.env == {"A": "yes"}


def test_needs_accepts_a_single_id() -> None:
    wf = load_workflow(
        "name: x\njobs:\n  a: {runs-on: l, steps: [{uses: a/b}]}\n  b: {runs-on: l, needs: a, steps: [{uses: a/b}]}\n"
    )
    assert wf.jobs["b"].needs == ["a"]


def test_expressions_are_case_insensitive_in_references() -> None:
    text = (
        "name: x\njobs:\n  a:\n    runs-on: l\n    steps:\n      - {id: Build, uses: a/b}\n"
        "      - {uses: a/b, if: STEPS.build.OUTCOME == 'success'}\n"
    )
    workflow = load_workflow(text)
    assert workflow.jobs["a"].steps[1].if_ == "STEPS.build.OUTCOME == 'success'"
    with pytest.raises(WorkflowValidationError) as raised:  # the reference is checked, not ignored
        load_workflow(text.replace("STEPS.build", "STEPS.built"))
    ((item),) = raised.value.errors
    assert (item.line, item.column, item.message) == (7, 25, "unknown step 'built' in job 'a'")


def test_node_checker_errors_are_placed() -> None:
    seen = []

    def checker(uses: str, with_: dict) -> list[WithProblem]:
        seen.append((uses, with_))
        return [WithProblem(("command",), "missing", on="key")] if "command" not in with_ else []

    text = "name: x\njobs:\n  a:\n    runs-on: l\n    steps:\n      - uses: exec/shell\n        with: {cwd: /}\n"
    with pytest.raises(WorkflowValidationError) as info:
        load_workflow(text, node_checker=checker)
    assert seen == [("exec/shell", {"cwd": "/"})]
    [err] = info.value.errors
    # A missing key points at the key of the mapping that lacks it.
    assert (err.line, err.column, err.path) == (7, 9, "jobs.a.steps[0].with.command")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800), ("90", 90), ("0.5", 0.5), (" 1m ", 60)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    "text",
    # ASCII digits only: float() would read Arabic-Indic "\u0661\u0662" as 12
    [
        "", "m", "5x", "1m1m", "-1s", "0", "1 h", "1.5.2s", "400d", "nan", "\u0661\u0662", "\u0661\u0662s",
        "1" * 5000 + "x",
    ],
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_inputs_are_typed_at_submit() -> None:
    wf = load_workflow(
        "name: x\ninputs:\n  v: {required: true}\n  n: {type: number, default: 2}\n"
        "  b: {type: boolean, default: 'no'}\n  o: {type: object, default: '{\"a\": 1}'}\n"
        "  r: {options: [eu, us], default: eu}\n  opt: {type: number}\n"
        "jobs:\n  a: {runs-on: l, steps: [{uses: a/b}]}\n"
    )
    resolved = resolve_inputs(wf, {"v": "1.0", "n": "3.5"})
    assert resolved == {"v": "1.0", "n": 3.5, "b": False, "o": {"a": 1}, "r": "eu", "opt": None}
    resolved = resolve_inputs(wf, {"v": "1.0"})
    assert resolve_inputs(wf, resolved) == resolved
    with pytest.raises(WorkflowValidationError) as info:
        resolve_inputs(wf, {"n": "lots", "zz": 1, "r": "asia"})
    messages = {e.path: e.message for e in info.value.errors}
    assert set(messages) == {"inputs.v", "inputs.n", "inputs.zz", "inputs.r"}
    assert "required" in messages["inputs.v"] and "number" in messages["inputs.n"]


def test_published_schema_matches_the_models() -> None:
    published = json.loads((DOCS / "reference" / "workflow.schema.json").read_text())
    regenerate = "regenerate with: python -m waterflow_core.dsl.schema > docs/reference/workflow.schema.json"
    assert published == workflow_json_schema(), regenerate


def test_schema_describes_the_dsl() -> None:
    schema = workflow_json_schema()
    assert schema["required"] == ["name", "jobs"]
    step = schema["$defs"]["Step"]["properties"]
    assert {"id", "uses", "with", "if", "timeout", "retry", "continue-on-error", "compensate"} <= set(step)


def test_schema_module_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    from waterflow_core.dsl import schema

    schema.main()
    assert json.loads(capsys.readouterr().out)["$id"] == schema.SCHEMA_ID


def test_every_dsl_key_is_documented() -> None:
    from pydantic import BaseModel

    from waterflow_core.dsl import models

    page = (DOCS / "reference" / "dsl.md").read_text()
    classes = [c for c in vars(models).values() if isinstance(c, type) and issubclass(c, BaseModel)]
    keys = {f.alias or n for c in classes if c.__module__ == models.__name__ for n, f in c.model_fields.items()}
    missing = sorted(k for k in keys if f"`{k}`" not in page)
    assert not missing, f"undocumented DSL keys: {missing}"


def test_check_is_a_node_call_checked_like_a_step() -> None:
    ok = load_workflow(
        "name: c\njobs:\n  j:\n    runs-on: g\n    steps:\n"
        "      - id: s\n        uses: exec/shell\n        with: {run: make}\n"
        "        check: {uses: exec/shell, with: {run: make -n}, timeout: 30s}\n"
    )
    check = ok.jobs["j"].steps[0].check
    assert check is not None and check.uses == "exec/shell" and check.with_ == {"run": "make -n"}
    for bad, message in [
        ("check: {uses: flow/sleep, with: {duration: 1s}}", "a flow node cannot be a check"),
        ("check: {uses: exec/shell, colour: red}", "unknown key 'colour'"),
        ("check: {uses: exec/shell, with: {run: $<< steps.later.outputs.x >>}}", "later"),
    ]:
        head = "name: c\njobs:\n  j:\n    runs-on: g\n    steps:\n      - id: s\n"
        text = f"{head}        uses: exec/shell\n        {bad}\n"
        with pytest.raises(WorkflowValidationError) as caught:
            load_workflow(text)
        assert message in str(caught.value) and "8:" in str(caught.value), str(caught.value)
    flow_step = (
        "name: c\njobs:\n  j:\n    runs-on: g\n    steps:\n      - uses: flow/sleep\n"
        "        with: {duration: 1s}\n        check: {uses: exec/shell}\n"
    )
    with pytest.raises(WorkflowValidationError, match="'check' does not apply to flow/sleep"):
        load_workflow(flow_step)
