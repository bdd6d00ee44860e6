"""Structure-aware fuzzing of ``load_workflow``: whatever the text, a Workflow or placed errors.

The contract: for any ``str`` or ``bytes``, ``load_workflow`` returns a :class:`Workflow` or
raises :class:`WorkflowValidationError` whose every item has a non-empty message and a line and
column (1-based) inside the text; no other exception, no hang. The generator starts from valid
workflows (the docs' examples, ``examples/``, the strict-YAML corpus), mutates them as data
(wrong types in every field, dropped and unknown keys, odd scalars, huge and nested values,
broken and out-of-place ``$<< >>`` expressions), and dumps them back with varied YAML styles.

Seeded with ``random.Random``, so every run is the same and a failure reproduces from the seed
in the test id (``pytest ... -k 'seed-3'``); 720 cases, a few seconds in all. For a longer hunt,
``WATERFLOW_DSL_FUZZ_CASES=2000`` runs that many cases per seed.

Below the fuzzer: one regression test per bug it (or the review around it) found in ``dsl/``.
"""

from __future__ import annotations

import copy
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from waterflow_core.dsl import Workflow, load_workflow
from waterflow_core.dsl.strict_yaml import load_strict_yaml
from waterflow_core.errors import WorkflowValidationError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

# --- the seeds: valid workflows (and valid YAML that is not a workflow) -----------------------------


def _seed_texts() -> list[str]:
    texts = []
    for page in sorted((REPO / "docs").rglob("*.md")):
        texts += re.findall(r"```yaml\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    for path in sorted((REPO / "examples").glob("*.yaml")):
        texts.append(path.read_text(encoding="utf-8"))
    for path in sorted((HERE / "yaml_corpus" / "valid").glob("*.yaml")):
        texts.append(path.read_bytes().decode("utf-8"))
    return texts


def _is_workflow(text: str) -> bool:
    try:
        load_workflow(text)
    except WorkflowValidationError:
        return False
    return True


SEED_TEXTS = _seed_texts()
SEEDS: list[Any] = [load_strict_yaml(text).data for text in SEED_TEXTS]
WORKFLOW_SEEDS = [data for data, text in zip(SEEDS, SEED_TEXTS, strict=True) if _is_workflow(text)]

# --- building blocks -------------------------------------------------------------------------------

KNOWN_KEYS = [
    # workflow
    "name", "description", "inputs", "vars", "env", "defaults", "timeout", "jobs",
    # job
    "runs-on", "needs", "if", "strategy", "continue-on-error", "outputs", "steps",
    # step / compensate
    "id", "uses", "with", "heartbeat-timeout", "retry", "compensate",
    # retry / strategy / input
    "max-attempts", "initial-interval", "backoff", "max-interval", "non-retryable",
    "matrix", "include", "exclude", "each-server", "max-parallel", "fail-fast",
    "type", "required", "default", "options",
]
NEAR_MISSES = ["runs_on", "Runs-On", "step", "use", "nmae", "job", "retries", "max_attempts", "witth", "If"]
ODD_KEYS = ["", " ", "a.b", "a b", "[0]", "0", "-", "$<< x >>", "é", "\U0001f30a", "k" * 300, "\u2028"]

EXPRESSIONS = [
    "$<<", "$<< ", "$<< 1", "$<< 'a", "$<< '>>", "$<<>>", "$<< >>", "$<< $<< 1 >> >>", ">> $<<",
    "$<< steps >>", "$<< steps.x >>", "$<< steps.*.outputs >>", "$<< steps[0] >>", "$<< steps['a b'] >>",
    "$<< needs >>", "$<< needs.x.outputs >>", "$<< needs.*.result >>", "$<< matrix >>",
    "$<< matrix.os >>", "$<< inputs >>", "$<< inputs.nope >>", "$<< INPUTS.VERSION >>",
    "$<< secrets.token >>", "$<< github.sha >>", "$<< loop.index >>", "$<< server.name >>",
    "$<< env.HOME >>", "$<< vars.app_dir >>", "$<< workflow.id >>", "$<< job.status >>",
    "$<< success() >>", "$<< failure() && always() >>", "$<< contains() >>", "$<< nope(1) >>",
    "$<< format('{0}', steps.a.outputs.b, needs.b.result, matrix.c) >>",
    "$<< fromJSON('[1,') >>", "$<< 0x >>", "$<< 1e99999 >>", "$<< ! >>", "$<< a.b. >>",
    "$<< é.ü >>", "$<< \U0001f30a >>", "$<< '\U0001f30a' >>", "$<< 'a\nb' >>", "a\n$<< x >>\nb",
    "$<< " + "(" * 300 + "1" + ")" * 300 + " >>",
    "$<< " + "!" * 500 + "true >>",
    "$<< " + " && ".join(["inputs.a"] * 200) + " >>",
    "$<< " + ".a" * 200 + " >>",
    "$<< steps" + ".a" * 200 + " >>",
    "$<< " + "'x' " * 100 + ">>",
    "$<< 1 >>" * 200,
    "$<<" * 200,
    "x $<< 1 >> y $<< inputs.version >> z $<< oops",
    "success()", "failure() ||", "steps.a.outcome == 'success'", "needs.ghost.result", "matrix.x",
]
ODD_SCALARS = [
    "", " ", "\n", "~", "null", "Null", "true", "no", "on", "0", "-1", "1.10", "1e999", "-1e999", "nan",
    ".inf", "0x10", "0o7", "1_000", "\u0661\u0662", "\u00b2", "9" * 5000, "1" * 50, "2d", "1h30m", "0s",
    "500ms", "1m1m", "-5s", "5 minutes", "367d", "\t", "'", '"', "#", "- a", "a: b", "{", "[", "@x", "`",
    "é", "\U0001f30a", "\u200b", "\u2028", "\x85", "\ufeff", "a\\b", "\\u0000", "C:\\dir",
    "exec/shell", "exec/shell@1", "Exec/Shell", "exec/shell@x", "a/b/c", "/", "group/",
    "[1, 2]", '{"a": 1}', "[" * 1000 + "]" * 1000, '{"a":' * 50 + "1" + "}" * 50,
]


def _huge(rng: random.Random) -> str:
    unit = rng.choice(["x", "é", "\U0001f30a", "ab ", "a\n", "$<< 1 >>", "'", "1"])
    return unit * rng.choice([1000, 5000, 20000])


def _scalar(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(ODD_SCALARS)
    if roll < 0.8:
        return rng.choice(EXPRESSIONS)
    if roll < 0.9:
        return _huge(rng)
    return "".join(rng.choice(["a", " ", "$<<", ">>", "'", ".", "(", ")", "\n", "é", "-", "1"])
                   for _ in range(rng.randint(1, 30)))


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return _scalar(rng)
    if roll < 0.6:
        return rng.choice([[], {}])
    if roll < 0.8:
        return [_value(rng, depth + 1) for _ in range(rng.randint(1, 4))]
    return {_key(rng): _value(rng, depth + 1) for _ in range(rng.randint(1, 4))}


def _key(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.6:
        return rng.choice(KNOWN_KEYS)
    if roll < 0.8:
        return rng.choice(NEAR_MISSES)
    return rng.choice(ODD_KEYS)


def _nested(rng: random.Random, value: Any) -> Any:
    for _ in range(rng.choice([3, 20, 62, 70])):
        value = [value] if rng.random() < 0.5 else {rng.choice(["a", "b", "$<< x >>"]): value}
    return value


# --- mutations ----------------------------------------------------------------------------------


def _places(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path in ``data`` (the root included)."""
    stack = [(path, data)]
    while stack:
        where, node = stack.pop()
        yield where
        if isinstance(node, dict):
            stack.extend(((*where, k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*where, i), v) for i, v in enumerate(node))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(root: list[Any], path: tuple[Any, ...], value: Any) -> None:
    """Set the value at ``path`` inside ``root[0]``."""
    parent = _get(root, (0, *path[:-1]))
    parent[path[-1]] = value


def _mutate(rng: random.Random, data: Any) -> Any:
    root = [data]
    places = list(_places(data))
    path = rng.choice(places)
    node = _get(root, (0, *path))
    op = rng.randrange(10)
    if op <= 2 and path:  # a different value: scalar, empty or random collection
        _set(root, path, _value(rng))
    elif op == 3 and path:  # wrap or nest the value
        _set(root, path, _nested(rng, node) if rng.random() < 0.3 else rng.choice([[node], {"x": node}]))
    elif op == 4 and isinstance(node, dict) and node:  # drop a key
        del node[rng.choice(list(node))]
    elif op == 5 and isinstance(node, dict):  # insert a key, known, near-miss or odd
        node[_key(rng)] = _value(rng)
    elif op == 6 and isinstance(node, dict) and node:  # rename a key (keep the value)
        old = rng.choice(list(node))
        node[_key(rng)] = node.pop(old)
    elif op == 7 and isinstance(node, list):  # empty, shrink or repeat a list
        choice = rng.random()
        if choice < 0.3:
            node.clear()
        elif node and choice < 0.6:
            node.append(copy.deepcopy(rng.choice(node)))
        elif node:
            node.pop(rng.randrange(len(node)))
    elif op == 8 and isinstance(node, str):  # splice an expression into a string
        cut = rng.randint(0, len(node))
        replacement = node[:cut] + rng.choice(EXPRESSIONS) + node[cut:]
        if path:
            _set(root, path, replacement)
        else:
            root[0] = replacement
    else:  # a wrong value in a known place of a job or step
        _set_known_field(rng, root[0])
    return root[0]


def _set_known_field(rng: random.Random, data: Any) -> None:
    """A known key of the workflow, a job, a step, a retry or compensation, an input or strategy,
    set to a random value or to a plausible one built from the document's own names."""
    if not isinstance(data, dict):
        return
    jobs = data.get("jobs")
    target = data
    if isinstance(jobs, dict) and jobs and rng.random() < 0.8:
        target = jobs[rng.choice(list(jobs))]
        steps = target.get("steps") if isinstance(target, dict) else None
        if isinstance(steps, list) and steps and rng.random() < 0.6:
            target = rng.choice(steps)
        if isinstance(target, dict) and rng.random() < 0.3:
            target = target.setdefault(rng.choice(["retry", "compensate", "strategy", "matrix"]), {})
    elif isinstance(data.get("inputs"), dict) and data["inputs"] and rng.random() < 0.5:
        target = data["inputs"][rng.choice(list(data["inputs"]))]
    if isinstance(target, dict):
        target[rng.choice(KNOWN_KEYS)] = _plausible(rng, data) if rng.random() < 0.5 else _value(rng)


def _plausible(rng: random.Random, data: dict[str, Any]) -> Any:
    """Names the document uses, in references, lists and ids: cycles, duplicates, forward references."""
    jobs = data["jobs"] if isinstance(data.get("jobs"), dict) else {}
    inputs = list(data["inputs"]) if isinstance(data.get("inputs"), dict) else []
    step_ids = [
        step["id"]
        for job in jobs.values() if isinstance(job, dict) and isinstance(job.get("steps"), list)
        for step in job["steps"] if isinstance(step, dict) and isinstance(step.get("id"), str)
    ]
    names = [*jobs, *inputs, *step_ids] or ["x"]
    one = rng.choice(names)
    return rng.choice([
        one, one.upper(), [one], names, [one, one], [[one]], [{one: one}],
        f"$<< steps.{one}.outputs.x >>", f"$<< needs.{one}.outputs >>", f"$<< inputs.{one} >>",
        f"$<< matrix.{one} >>", f"steps.{one}.outcome == 'success'", f"$<< needs.{one}.result >>",
        {one: [one]}, {"include": [{one: one}], "exclude": one}, {one: []},
        rng.choice(["string", "number", "boolean", "object", "array"]),
    ])


def _dump(rng: random.Random, data: Any) -> str:
    return yaml.dump(  # libyaml's emitter: the pure-Python one would take most of the time budget
        data,
        Dumper=yaml.CSafeDumper,
        default_style=rng.choice([None, None, None, '"', "'", "|", ">"]),
        default_flow_style=rng.choice([False, True, None]),
        allow_unicode=rng.random() < 0.7,
        width=rng.choice([80, 12, 1_000_000]),
        indent=rng.choice([2, 4]),
        sort_keys=False,
    )


def _text_mutation(rng: random.Random, text: str) -> str | bytes:
    """A few edits below the data level: encodings, line ends, truncation, stray characters."""
    roll = rng.random()
    if roll < 0.15:
        return text.encode("utf-8")
    if roll < 0.2 and text:
        at = rng.randrange(len(text))
        return text[:at].encode("utf-8") + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80"]) + text[at:].encode("utf-8")
    if roll < 0.3:
        return "\ufeff" + text.replace("\n", "\r\n")
    if roll < 0.4 and text:
        return text[: rng.randrange(len(text))]
    if roll < 0.5 and text:
        at = rng.randrange(len(text))
        stray = ["\t", "\r", "\x85", "\u2028", "\x00", "\x07", "\ud800", "'", '"', "&a ", "*a", "!t ", "{", "}", "? "]
        return text[:at] + rng.choice(stray) + text[at:]
    return text


def _case(rng: random.Random) -> str | bytes:
    data = copy.deepcopy(rng.choice(WORKFLOW_SEEDS if rng.random() < 0.9 else SEEDS))
    for _ in range(rng.choice([1, 1, 2, 3, 6])):
        data = _mutate(rng, data)
    return _text_mutation(rng, _dump(rng, data))


# --- the contract ------------------------------------------------------------------------------------

_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # libyaml's line breaks


def _lines(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return _BREAKS.split(text.removeprefix("\ufeff"))


def check_contract(text: str | bytes) -> Workflow | WorkflowValidationError:
    """Load ``text``; fail unless the result is a Workflow or well-placed validation errors."""
    try:
        return load_workflow(text)
    except WorkflowValidationError as exc:
        error = exc
    assert error.errors, "a validation error must carry at least one item"
    assert len(error.errors) <= 101
    lines = _lines(text)
    for item in error.errors:
        assert item.message.strip(), item
        # Readable: no message as long as the hostile value that caused it.
        assert len(item.message) <= 500, (len(item.message), item.message[:300])
        assert _inside(item, lines), str(item)
        assert len(item.path) <= 200, item.path
    return error


def _inside(item: Any, lines: list[str]) -> bool:
    """Whether the item's line and column are in the text (or just after its end)."""
    if not 1 <= item.line <= len(lines) + 1:
        return False
    width = len(lines[item.line - 1]) if item.line <= len(lines) else 0
    return 1 <= item.column <= width + 1


CASES_PER_SEED = int(os.environ.get("WATERFLOW_DSL_FUZZ_CASES", "60"))


@pytest.mark.parametrize("seed", range(12), ids=lambda s: f"seed-{s}")
def test_mutated_workflows_keep_the_contract(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(CASES_PER_SEED):
        text = _case(rng)
        try:
            check_contract(text)
        except Exception as exc:  # add the input to whatever went wrong
            raise AssertionError(f"{type(exc).__name__}: {exc}\ninput: {text[:2000]!r}") from exc


def test_the_seeds_are_valid_workflows() -> None:
    assert len(WORKFLOW_SEEDS) >= 5
    for data in WORKFLOW_SEEDS:
        assert isinstance(check_contract(yaml.safe_dump(data, sort_keys=False)), Workflow)


_PIECES = ["$<< 1 >>", "$<< '>>' >>", "a", "b ", " ", "  ", "\n", "\n\n", "\t", "'", '"', "\\", "é", "\U0001f30a",
           "\x07", "\u00a0", "x" * 30, "- ", ": ", "#", "\r"]


@pytest.mark.parametrize("seed", range(4), ids=lambda s: f"seed-{s}")
def test_expression_errors_point_exactly_into_every_scalar_style(seed: int) -> None:
    """An expression error inside text that YAML quotes, escapes, folds or indents is placed on
    the expression as written, whatever the style the text was dumped in."""
    rng = random.Random(seed)
    for _ in range(100):
        before = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12)))
        after = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 6)))
        value = before + "$<<" + rng.choice([" ", "\n", " \n\n  ", "\t"]) + "github.sha >>" + after
        data = {"name": "x", "jobs": {"a": {"runs-on": "l", "steps": [{"uses": "a/b", "with": {"command": value}}]}}}
        text = _dump(rng, data)
        [error] = [e for e in _errors(text) if "github" in e.message]
        line = _lines(text)[error.line - 1]
        assert line[error.column - 1 :].startswith("github.sha"), (str(error), value, text)


# --- regressions: each input the fuzzer (or its review) found, fixed in dsl/ ---------------------------

STEP = "jobs:\n  a:\n    runs-on: l\n    steps:\n      - uses: exec/shell\n"


def _errors(text: str | bytes) -> list[Any]:
    result = check_contract(text)
    assert isinstance(result, WorkflowValidationError), "expected the text to be rejected"
    return result.errors


def test_needs_entries_that_are_not_ids_are_type_errors() -> None:
    # was: TypeError (unhashable type: 'list') in checks._check_needs
    text = (
        "name: x\njobs:\n  a: {runs-on: l, needs: [[b]], steps: [{uses: a/b}]}\n"
        "  b: {runs-on: l, needs: [{a: 1}], steps: [{uses: a/b}]}\n"
    )
    messages = {(e.line, e.column, e.path): e.message for e in _errors(text)}
    assert messages == {
        (3, 27, "jobs.a.needs[0]"): "expected a string, got a list",
        (4, 27, "jobs.b.needs[0]"): "expected a string, got a mapping",
    }


def test_deeply_nested_json_default_is_an_error() -> None:
    # was: RecursionError from json.loads in inputs.coerce_value
    for depth in (100, 5000):
        text = "name: x\ninputs:\n  a: {type: array, default: '" + "[" * depth + "]" * depth + "'}\n" + STEP
        [error] = _errors(text)
        assert (error.line, error.path) == (3, "inputs.a")
        assert "nested deeper than 64 levels" in error.message


def test_a_long_run_of_digits_is_not_a_quadratic_duration() -> None:
    # was: minutes of regex backtracking (finditer retried at every digit; 20 000 digits took 13 s)
    [error] = _errors("name: x\ntimeout: " + "1" * 50_000 + "x\n" + STEP)
    assert error.message.startswith("invalid duration '1111")
    assert len(error.message) < 200


@pytest.mark.parametrize(
    "value",
    [
        '"a\\tb\\u00e9\\U0001F30A \\" $<< github.sha >>"',  # escapes take more text than value
        "'it''s $<< github.sha >>'",  # a doubled quote is one character
        "echo one\n            two   $<< github.sha >>",  # a folded plain scalar
        '"one \\\n            two $<< github.sha >>"',  # an escaped line break
        '"one\n\n            two $<< github.sha >>"',  # a blank line folds to a newline
        "|\n            echo one\n              echo $<< github.sha >>",  # indentation is not in the value
        ">\n            echo one\n            echo $<< github.sha >>",  # folded lines join with spaces
        "|-\n            \U0001f30a $<< 1 >> $<< github.sha >>",  # a second expression, after an astral char
    ],
    ids=[
        "double-quoted", "single-quoted", "folded-plain", "escaped-break", "blank-line", "literal", "folded", "second",
    ],
)
@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_expression_errors_point_at_the_expression_in_the_text(value: str, crlf: bool) -> None:
    # was: the offset inside the value was added to the scalar's column, ignoring escapes, folding
    # and block indentation: the column could point past the end of the line
    text = "name: x\n" + STEP + "        with:\n          command: " + value + "\n"
    if crlf:
        text = "\ufeff" + text.replace("\n", "\r\n")
    [error] = _errors(text)
    line = _lines(text)[error.line - 1]
    assert line[error.column - 1 :].startswith("github.sha"), (str(error), line)


def test_messages_quote_huge_values_briefly() -> None:
    huge = "x" * 100_000
    texts = [
        f"name: x\ntimeout: {huge}\n" + STEP,  # a duration
        f"name: x\n{'k' * 1000}: 1\n" + STEP,  # an unknown key
        f"name: x\ninputs:\n  n: {{type: number, default: {huge}}}\n" + STEP,  # a typed default
        f"name: x\njobs:\n  {'j' * 1000}:\n    runs-on: l\n    needs: [{huge}]\n    steps: [{{uses: a/b}}]\n",
        f"name: x\nvars: {{a: '$<< {huge} >>'}}\n" + STEP,  # an expression error quoting the expression
    ]
    for text in texts:
        for error in _errors(text):
            assert len(error.message) <= 400 and len(error.path) <= 200, str(error)[:500]


def test_unknown_needs_list_the_other_jobs_briefly() -> None:
    jobs = "".join(f"  j{i}: {{runs-on: l, steps: [{{uses: a/b}}]}}\n" for i in range(30))
    [error] = _errors("name: x\njobs:\n  a: {runs-on: l, needs: ghost, steps: [{uses: a/b}]}\n" + jobs)
    assert error.message == "unknown job 'ghost' in needs (jobs: j0, j1, j2, j3, j4, j5, j6, j7, j8, j9, ... (20 more))"


def test_paths_are_readable() -> None:
    # odd keys are quoted; deep paths keep their ends
    [odd] = _errors("name: x\nvars: {'a.b': {' ': '$<< github.x >>'}}\n" + STEP)
    assert odd.path == 'vars["a.b"][" "]'
    deep = "$<< github.x >>"
    for level in range(40):
        deep = {f"k{level}": deep} if level % 2 else [deep]
    [error] = _errors(yaml.safe_dump({"name": "x", "vars": {"v": deep}, **load_strict_yaml(STEP).data}))
    assert error.path == "vars.v.k39[0]…[0].k1[0]"


def test_a_too_deep_document_names_a_short_path() -> None:
    errors = _errors("name: x\nvars:\n" + "".join("  " * (i + 1) + "key: \n" for i in range(80)))
    assert all(len(e.path) <= 200 for e in errors), [e.path for e in errors]


def test_every_error_counts_lines_as_libyaml_does() -> None:
    # libyaml puts the syntax error of `a: "x<LS>y"\nb: c: d` on line 3; the NUL byte of
    # `a: "x<LS>y"\nb: <NUL>` is then on line 3 too, not line 2
    [syntax] = _errors('a: "x\u2028y"\nb: c: d\n')
    [reader] = _errors('a: "x\u2028y"\nb: \x00\n')
    assert syntax.line == reader.line == 3


def test_errors_are_capped() -> None:
    text = "name: x\nvars:\n" + "".join(f"  v{i}: $<< github.x >>\n" for i in range(150)) + STEP
    errors = _errors(text)
    assert len(errors) == 101
    [more] = [e for e in errors if "not listed" in e.message]
    assert (more.line, more.column, more.message) == (103, 13, "50 more problems from here on are not listed")


def test_a_dense_needs_graph_reports_a_few_short_cycles() -> None:
    # was: one cycle per back edge, each listing its whole path: ~80 000 problems, 86 MB of text
    count = 120
    jobs = "".join(
        f"  j{i}: {{runs-on: l, needs: [{', '.join(f'j{k}' for k in range(count) if k != i)}], "
        "steps: [{uses: a/b}]}\n"
        for i in range(count)
    )
    cycles = [e for e in _errors("name: x\njobs:\n" + jobs) if "cycle" in e.message]
    assert 1 <= len(cycles) <= 20
    chain = "name: x\njobs:\n" + "".join(
        f"  j{i}: {{runs-on: l, needs: j{(i + 1) % 30}, steps: [{{uses: a/b}}]}}\n" for i in range(30)
    )
    [cycle] = _errors(chain)
    shown = "j0 -> j1 -> j2 -> j3 -> j4 -> j5 -> j6 -> j7 -> j8 -> ... (20 more) -> j29 -> j0"
    assert cycle.message == f"dependency cycle: {shown}"


def test_step_ids_that_differ_in_case_are_duplicates() -> None:
    # `steps.build` reads either step: expressions ignore case
    text = (
        "name: x\njobs:\n  a:\n    runs-on: l\n    steps:\n"
        "      - {id: build, uses: a/b}\n      - {id: Build, uses: a/b}\n"
    )
    [error] = _errors(text)
    assert (error.line, error.column, error.path) == (7, 14, "jobs.a.steps[1].id")
    assert error.message == "duplicate step id 'Build' (step 1 is 'build'; ids ignore case)"


def test_a_key_named_like_pydantics_key_marker_is_placed_at_its_value() -> None:
    # pydantic reports bad mapping keys at a "[key]" location; a real "[key]" key is not one
    [error] = _errors('name: x\nenv: {"[key]": []}\n' + STEP)
    expected = (2, 16, 'env["[key]"]', "expected a string, got a list")
    assert (error.line, error.column, error.path, error.message) == expected


def test_type_errors_are_in_the_dsls_words() -> None:
    # pydantic says "valid dictionary or instance of Step": YAML users write mappings
    text = (
        'name: ""\njobs:\n  a:\n    runs-on: l\n    strategy: {max-parallel: "0"}\n    steps:\n'
        '      - uses: a/b\n        retry: {max-attempts: "5000", backoff: many}\n      - oops\n'
    )
    assert [str(e) for e in _errors(text)] == [
        "1:7: name: must not be empty",
        "5:30: jobs.a.strategy.max-parallel: must be at least 1, got '0'",
        "8:31: jobs.a.steps[0].retry.max-attempts: must be at most 1000, got '5000'",
        "8:48: jobs.a.steps[0].retry.backoff: expected a number, got 'many'",
        "9:9: jobs.a.steps[1]: expected a mapping, got 'oops'",
    ]
