"""Static checks that the models cannot express: references, dependencies and expressions.

They run on the raw document (not the models) so that they still report when some other part
of the document failed model validation: the user gets every problem in one pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ExpressionError
from ..expressions import CompiledExpression, Template, compile_expression, parse_template

Path = tuple[str | int, ...]

# What each place may read. Secrets may only appear where the agent renders the text (with/env),
# because anything the workflow evaluates ends up in Temporal's event history.
_BASE = frozenset({"inputs", "vars", "workflow"})
SCOPE_VARS = _BASE
SCOPE_WORKFLOW_ENV = _BASE | {"secrets", "env", "server"}
SCOPE_JOB_IF = _BASE | {"needs"}
SCOPE_STRATEGY = _BASE | {"needs"}
SCOPE_RUNS_ON = _BASE | {"needs", "matrix"}
SCOPE_JOB_ENV = _BASE | {"needs", "matrix", "secrets", "env", "server"}
SCOPE_JOB_OUTPUTS = _BASE | {"needs", "matrix", "steps", "env", "server"}
SCOPE_STEP_IF = _BASE | {"needs", "matrix", "steps", "env", "server", "loop"}
SCOPE_STEP_WITH = SCOPE_STEP_IF | {"secrets"}


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem at a document path; ``offset`` is 1-based inside the scalar at that path."""

    path: Path
    message: str
    on_key: bool = False
    offset: int = 0


@dataclass(frozen=True, slots=True)
class _JobScope:
    """What references may name inside one job; names lowercased (expressions ignore case)."""

    job_id: str
    needs: frozenset[str]
    has_matrix: bool
    step_ids: tuple[str | None, ...]
    inputs: frozenset[str]


def check_workflow(data: dict[str, Any]) -> list[Problem]:
    """Every static problem found in the raw workflow mapping."""
    problems: list[Problem] = []
    inputs = _mapping(data.get("inputs"))
    input_names = frozenset(inputs)
    top = _JobScope("", frozenset(), False, (), frozenset(n.lower() for n in input_names))
    problems += _check_templates(data.get("vars"), ("vars",), SCOPE_VARS, top)
    problems += _check_templates(data.get("env"), ("env",), SCOPE_WORKFLOW_ENV, top)
    jobs = _mapping(data.get("jobs"))
    problems += _check_needs(jobs)
    for job_id, job in jobs.items():
        if isinstance(job, dict):
            problems += _check_job(str(job_id), job, input_names)
    return problems


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _needs_list(job: Any) -> list[Any]:
    needs = job.get("needs") if isinstance(job, dict) else None
    if isinstance(needs, str):
        return [needs]
    return needs if isinstance(needs, list) else []


def _check_needs(jobs: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    edges: dict[str, list[str]] = {}
    for job_id, job in jobs.items():
        raw = job.get("needs") if isinstance(job, dict) else None
        listed = isinstance(raw, list)
        edges[job_id] = []
        for index, need in enumerate(_needs_list(job)):
            where: Path = ("jobs", job_id, "needs", index) if listed else ("jobs", job_id, "needs")
            if need == job_id:
                problems.append(Problem(where, f"job '{job_id}' cannot need itself"))
            elif need not in jobs:
                known = ", ".join(j for j in jobs if j != job_id) or "none"
                problems.append(Problem(where, f"unknown job '{need}' in needs (jobs: {known})"))
            else:
                edges[job_id].append(need)
    for cycle in _cycles(edges):
        first = cycle[0]
        listed = isinstance(jobs[first].get("needs"), list)
        index = _needs_list(jobs[first]).index(cycle[1])
        where = ("jobs", first, "needs", index) if listed else ("jobs", first, "needs")
        problems.append(Problem(where, "dependency cycle: " + " -> ".join([*cycle, first])))
    return problems


def _cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """One representative of every dependency cycle (iterative DFS: no recursion-depth limit)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    found: list[list[str]] = []
    for root in edges:
        if root in state:
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(edges[root]))]
        state[root] = 1
        path.append(root)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(child) == 1:
                found.append(path[path.index(child):])
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(edges[child])))
    return found


def _check_job(job_id: str, job: dict[str, Any], inputs: frozenset[str]) -> list[Problem]:
    problems: list[Problem] = []
    base: Path = ("jobs", job_id)
    strategy = _mapping(job.get("strategy"))
    steps = job.get("steps") if isinstance(job.get("steps"), list) else []
    step_ids: list[str | None] = []
    first_seen: dict[str, int] = {}
    for index, step in enumerate(steps):
        sid = step.get("id") if isinstance(step, dict) else None
        if isinstance(sid, str):
            if sid in first_seen:
                problems.append(
                    Problem((*base, "steps", index, "id"), f"duplicate step id '{sid}' (also step {first_seen[sid] + 1})")
                )
            first_seen.setdefault(sid, index)
        step_ids.append(sid if isinstance(sid, str) else None)
    scope = _JobScope(
        job_id,
        frozenset(n.lower() for n in _needs_list(job) if isinstance(n, str)),
        isinstance(strategy.get("matrix"), dict),
        tuple(s.lower() if s else None for s in step_ids),
        frozenset(n.lower() for n in inputs),
    )
    problems += _check_condition(job.get("if"), (*base, "if"), SCOPE_JOB_IF, scope, None)
    problems += _check_templates(job.get("runs-on"), (*base, "runs-on"), SCOPE_RUNS_ON, scope)
    problems += _check_templates(strategy, (*base, "strategy"), SCOPE_STRATEGY, scope)
    problems += _check_templates(job.get("env"), (*base, "env"), SCOPE_JOB_ENV, scope)
    problems += _check_templates(job.get("outputs"), (*base, "outputs"), SCOPE_JOB_OUTPUTS, scope, len(steps))
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        where: Path = (*base, "steps", index)
        problems += _check_condition(step.get("if"), (*where, "if"), SCOPE_STEP_IF, scope, index)
        problems += _check_templates(step.get("name"), (*where, "name"), SCOPE_STEP_IF, scope, index)
        for key in ("with", "env"):
            problems += _check_templates(step.get(key), (*where, key), SCOPE_STEP_WITH, scope, index)
        compensate = _mapping(step.get("compensate"))
        for key in ("with", "env"):
            # A compensation runs after its step, so it may read that step's own outputs.
            problems += _check_templates(
                compensate.get(key), (*where, "compensate", key), SCOPE_STEP_WITH, scope, index + 1
            )
    return problems


def _check_condition(value: Any, path: Path, allowed: frozenset[str], scope: _JobScope, step: int | None) -> list[Problem]:
    """An ``if:`` holds a bare expression or one ``$<< >>``; both forms are accepted."""
    if not isinstance(value, str):
        return []
    if "$<<" in value:
        return _check_templates(value, path, allowed, scope, step)
    try:
        compiled = compile_expression(value)
    except ExpressionError as exc:
        return [Problem(path, exc.message, offset=max(exc.position, 1))]
    return _check_references(compiled, 1, path, allowed, scope, step)


def _check_templates(
    value: Any, path: Path, allowed: frozenset[str], scope: _JobScope, step: int | None = None
) -> list[Problem]:
    problems: list[Problem] = []
    for where, text in _strings(value, path):
        if "$<<" not in text:
            continue
        try:
            template: Template = parse_template(text)
        except ExpressionError as exc:
            problems.append(Problem(where, exc.message, offset=max(exc.position, 1)))
            continue
        for offset, compiled in template.expressions:
            problems += _check_references(compiled, offset, where, allowed, scope, step)
    return problems


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    stack: list[tuple[Path, Any]] = [(path, value)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, str):
            yield where, node
        elif isinstance(node, dict):
            stack.extend(((*where, k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*where, i), v) for i, v in enumerate(node))


def _check_references(
    compiled: CompiledExpression,
    offset: int,
    path: Path,
    allowed: frozenset[str],
    scope: _JobScope,
    step: int | None,
) -> list[Problem]:
    problems: list[Problem] = []
    for ref in compiled.references:
        at = offset + ref.position - 1
        message = _reference_problem(ref.context, ref.path, allowed, scope, step)
        if message:
            problems.append(Problem(path, message, offset=at))
    return problems


def _reference_problem(
    context: str, path: tuple[Any, ...], allowed: frozenset[str], scope: _JobScope, step: int | None
) -> str | None:
    if context not in allowed:
        if context == "secrets":
            return "secrets can only be used in a step's with: and env: (they are resolved on the agent)"
        return f"context '{context}' is not available here (available: {', '.join(sorted(allowed))})"
    head = path[0] if path and isinstance(path[0], str) else None
    if head is None:
        return None
    # Names in expressions are case-insensitive, as in GitHub Actions.
    low = head.lower()
    if context == "steps":
        ids = scope.step_ids
        if low in ids[: step if step is not None else len(ids)]:
            return None
        if low in ids:
            return f"step '{head}' runs later in job '{scope.job_id}'; only earlier steps can be referenced"
        return f"unknown step '{head}' in job '{scope.job_id}'"
    if context == "needs" and low not in scope.needs:
        listed = ", ".join(sorted(scope.needs)) or "none"
        return f"job '{head}' is not in this job's needs (needs: {listed})"
    if context == "inputs" and low not in scope.inputs:
        return f"unknown input '{head}' (declared inputs: {', '.join(sorted(scope.inputs)) or 'none'})"
    if context == "matrix" and not scope.has_matrix:
        return "matrix is only available in a job with strategy.matrix"
    return None
