"""Static checks that the models cannot express: references, dependencies and expressions.

They run on the raw document (not the models) so that they still report when some other part
of the document failed model validation: the user gets every problem in one pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ExpressionError, format_path
from ..expressions import OPEN, CompiledExpression, Template, compile_expression, parse_template, walk_templates
from ._messages import MAX_LISTED, cut, listing, name
from .models import FLOW_CONDITION, FLOW_LOOP, FLOW_SLEEP, flow_node

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
SCOPE_FLOW_WITH = SCOPE_STEP_IF
"""A flow node's own ``with:`` keys: evaluated in the workflow, like ``if:``."""

# Where a step id that a place can see runs, relative to that place (besides its index in the
# place's own list): before it, after it, or around it (a flow step, from inside its own steps).
_EARLIER = -1
_ENCLOSING = -2
_LATER = 1 << 30

MAX_CYCLES = 20
"""Dependency cycles reported at most; one is enough to act on."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem at a document path; ``offset`` is 1-based inside the scalar at that path."""

    path: Path
    message: str
    on_key: bool = False
    offset: int = 0


@dataclass(frozen=True, slots=True)
class _Scope:
    """What references may name at one place; names lowercased (expressions ignore case)."""

    job_id: str
    inputs: frozenset[str]
    inputs_listed: str
    needs: frozenset[str] = frozenset()
    needs_listed: str = "none"
    has_matrix: bool = False
    steps: dict[str, int] | None = None
    """Each step id visible here → the index of its first step in this place's list, or
    ``_EARLIER`` / ``_LATER`` / ``_ENCLOSING`` for ids of enclosing lists."""
    nested: dict[str, Path] | None = None
    """Step ids of the job's nested step lists → the flow step whose list holds them."""
    in_loop: bool = False
    """Inside the steps (or the ``break-if``) of a ``flow/loop``: ``loop`` is available."""
    flow: str | None = None
    """The flow node whose own ``with:`` is being checked."""

    def for_job(self, job_id: str, job: dict[str, Any], steps: dict[str, int], nested: dict[str, Path]) -> _Scope:
        needs = frozenset(need.lower() for _, need in _needs_entries(job_id, job))
        has_matrix = isinstance(_mapping(job.get("strategy")).get("matrix"), dict)
        return _Scope(
            job_id, self.inputs, self.inputs_listed, needs, listing(sorted(needs)), has_matrix, steps, nested
        )

    def inside(self, index: int, own: dict[str, int], *, loop: bool) -> _Scope:
        """The scope of the steps run by the flow step at ``index`` of this place's list, whose
        own ids are ``own``: this list's ids become earlier, enclosing or later."""
        steps = {low: _relative(at, index) for low, at in (self.steps or {}).items()}
        steps.update(own)
        return replace(self, steps=steps, in_loop=self.in_loop or loop, flow=None)


def _relative(at: int, index: int) -> int:
    if at < 0 or at >= _LATER:
        return at
    if at < index:
        return _EARLIER
    return _ENCLOSING if at == index else _LATER


def check_workflow(data: dict[str, Any]) -> list[Problem]:
    """Every static problem found in the raw workflow mapping."""
    problems: list[Problem] = []
    inputs = frozenset(n.lower() for n in _mapping(data.get("inputs")))
    top = _Scope("", inputs, listing(sorted(inputs)))
    problems += _check_templates(data.get("vars"), ("vars",), SCOPE_VARS, top)
    problems += _check_templates(data.get("env"), ("env",), SCOPE_WORKFLOW_ENV, top)
    jobs = _mapping(data.get("jobs"))
    problems += _check_needs(jobs)
    for job_id, job in jobs.items():
        if isinstance(job, dict):
            problems += _check_job(job_id, job, top)
    return problems


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _needs_entries(job_id: str, job: Any) -> list[tuple[Path, str]]:
    """Each job id in ``needs`` (one id or a list) with its path; other values are the models' to report."""
    needs = job.get("needs") if isinstance(job, dict) else None
    base: Path = ("jobs", job_id, "needs")
    if isinstance(needs, str):
        return [(base, needs)]
    if isinstance(needs, list):
        return [((*base, index), need) for index, need in enumerate(needs) if isinstance(need, str)]
    return []


def _check_needs(jobs: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    edges: dict[str, list[str]] = {}
    places: dict[tuple[str, str], Path] = {}  # (job, needed job) → where the need is written
    for job_id, job in jobs.items():
        edges[job_id] = []
        for where, need in _needs_entries(job_id, job):
            if need == job_id:
                problems.append(Problem(where, f"job '{name(job_id)}' cannot need itself"))
            elif need not in jobs:
                others = listing((j for j in jobs if j != job_id), total=len(jobs) - 1)
                problems.append(Problem(where, f"unknown job '{name(need)}' in needs (jobs: {others})"))
            else:
                edges[job_id].append(need)
                places.setdefault((job_id, need), where)
    for cycle in _cycles(edges):
        problems.append(Problem(places[cycle[0], cycle[1]], "dependency cycle: " + _show_cycle(cycle)))
    return problems


def _show_cycle(cycle: list[str]) -> str:
    if len(cycle) > MAX_LISTED:
        shown = [*cycle[: MAX_LISTED - 1], f"... ({len(cycle) - MAX_LISTED} more)", cycle[-1]]
    else:
        shown = cycle
    return " -> ".join(name(job) for job in [*shown, cycle[0]])


def _cycles(edges: dict[str, list[str]], limit: int = MAX_CYCLES) -> list[list[str]]:
    """One representative of each dependency cycle, at most ``limit`` of them (iterative DFS:
    no recursion-depth limit; the cap keeps a dense hostile graph from costing O(edges x jobs))."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    found: list[list[str]] = []
    for root, needs in edges.items():
        if root in state:
            continue
        path: list[str] = [root]
        on_path: dict[str, int] = {root: 0}  # job → its index in ``path``
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(needs))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                del on_path[node]
                state[node] = 2
            elif state.get(child) == 1:
                found.append(path[on_path[child] :])
                if len(found) >= limit:
                    return found
            elif child not in state:
                state[child] = 1
                on_path[child] = len(path)
                path.append(child)
                stack.append((child, iter(edges[child])))
    return found


def _check_job(job_id: str, job: dict[str, Any], top: _Scope) -> list[Problem]:
    problems: list[Problem] = []
    base: Path = ("jobs", job_id)
    listed = job.get("steps")
    steps = listed if isinstance(listed, list) else []
    first_seen, duplicates = _step_ids(steps, (*base, "steps"), {})
    problems += duplicates
    nested: dict[str, Path] = {}
    _nested_ids(steps, (*base, "steps"), nested)
    scope = top.for_job(job_id, job, first_seen, nested)
    problems += _check_condition(job.get("if"), (*base, "if"), SCOPE_JOB_IF, scope, None)
    problems += _check_templates(job.get("runs-on"), (*base, "runs-on"), SCOPE_RUNS_ON, scope)
    problems += _check_templates(job.get("strategy"), (*base, "strategy"), SCOPE_STRATEGY, scope)
    problems += _check_templates(job.get("env"), (*base, "env"), SCOPE_JOB_ENV, scope)
    problems += _check_templates(job.get("outputs"), (*base, "outputs"), SCOPE_JOB_OUTPUTS, scope, len(steps))
    problems += _check_steps(steps, (*base, "steps"), scope, {})
    return problems


def _step_ids(steps: list[Any], base: Path, taken: dict[str, Path]) -> tuple[dict[str, int], list[Problem]]:
    """The ids of a step list (lowercased → index of the first step with it), and the problems:
    an id twice in the list, or an id an enclosing list (``taken``: id → its step) already has."""
    problems: list[Problem] = []
    first_seen: dict[str, int] = {}  # `steps.<id>` ignores case
    for index, step in enumerate(steps):
        sid = step.get("id") if isinstance(step, dict) else None
        if not isinstance(sid, str):
            continue
        low = sid.lower()
        first = first_seen.setdefault(low, index)
        if first != index:
            other = steps[first]["id"]
            also = f"also step {first + 1}"
            if other != sid:
                also = f"step {first + 1} is '{name(other)}'; ids ignore case"
            problems.append(Problem((*base, index, "id"), f"duplicate step id '{name(sid)}' ({also})"))
        elif low in taken:
            message = f"duplicate step id '{name(sid)}' (also {format_path(taken[low])}, in an enclosing list)"
            problems.append(Problem((*base, index, "id"), message))
    return first_seen, problems


def _nested_ids(steps: list[Any], base: Path, found: dict[str, Path], owner: Path | None = None) -> None:
    """Collect the ids of nested step lists (lowercased) with the flow step whose list holds them."""
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        sid = step.get("id")
        if owner is not None and isinstance(sid, str):
            found.setdefault(sid.lower(), owner)
        for key, nested in _flow_lists(step):
            _nested_ids(nested, (*base, index, "with", key), found, (*base, index))


def _flow_lists(step: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """The nested step lists of a flow step as written: ``(key under with, list)``."""
    node = flow_node(step.get("uses"))
    keys = {FLOW_LOOP: ("steps",), FLOW_CONDITION: ("then", "else")}.get(node or "", ())
    with_ = _mapping(step.get("with"))
    return [(key, with_[key]) for key in keys if isinstance(with_.get(key), list)]


def _check_steps(steps: list[Any], base: Path, scope: _Scope, taken: dict[str, Path]) -> list[Problem]:
    """The expressions of one step list, whose ids are in ``scope.steps`` (checked by the caller)."""
    problems: list[Problem] = []
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        where: Path = (*base, index)
        problems += _check_condition(step.get("if"), (*where, "if"), SCOPE_STEP_IF, scope, index)
        problems += _check_templates(step.get("name"), (*where, "name"), SCOPE_STEP_IF, scope, index)
        problems += _check_templates(step.get("env"), (*where, "env"), SCOPE_STEP_WITH, scope, index)
        compensate = _mapping(step.get("compensate"))
        for key in ("with", "env"):
            # A compensation runs after its step, so it may read that step's own outputs.
            problems += _check_templates(
                compensate.get(key), (*where, "compensate", key), SCOPE_STEP_WITH, scope, index + 1
            )
        check = _mapping(step.get("check"))
        for key in ("with", "env"):  # a check runs in its step's place: it sees what the step sees
            problems += _check_templates(check.get(key), (*where, "check", key), SCOPE_STEP_WITH, scope, index)
        node = flow_node(step.get("uses"))
        if node is None:
            problems += _check_templates(step.get("with"), (*where, "with"), SCOPE_STEP_WITH, scope, index)
        else:
            problems += _check_flow(node, _mapping(step.get("with")), where, scope, index, taken)
    return problems


def _check_flow(
    node: str, with_: dict[str, Any], where: Path, scope: _Scope, index: int, taken: dict[str, Path]
) -> list[Problem]:
    """A flow step's ``with:``: its own keys are evaluated in the workflow when the step starts;
    its nested steps are checked as a list of their own, seeing the steps before the flow step."""
    problems: list[Problem] = []
    at: Path = (*where, "with")
    own = replace(scope, flow=node)
    if node == FLOW_SLEEP:
        for key in ("duration", "until"):
            problems += _check_templates(with_.get(key), (*at, key), SCOPE_FLOW_WITH, own, index)
        return problems
    if node == FLOW_CONDITION:
        problems += _check_condition(with_.get("if"), (*at, "if"), SCOPE_FLOW_WITH, own, index)
    else:
        problems += _check_templates(with_.get("items"), (*at, "items"), SCOPE_FLOW_WITH, own, index)
    # The ids a nested step may not take: those of every enclosing list, this one included.
    outer = {**taken, **{low: (*where[:-1], i) for low, i in (scope.steps or {}).items() if 0 <= i < _LATER}}
    for key, steps in _flow_lists({"uses": node, "with": with_}):
        ids, duplicates = _step_ids(steps, (*at, key), outer)
        inner = scope.inside(index, ids, loop=node == FLOW_LOOP)
        problems += duplicates + _check_steps(steps, (*at, key), inner, outer)
        if node == FLOW_LOOP:
            # `break-if` is read after each iteration: every step of the iteration has run.
            after = replace(inner, steps={**(inner.steps or {}), **dict.fromkeys(ids, _EARLIER)}, flow=node)
            problems += _check_condition(with_.get("break-if"), (*at, "break-if"), SCOPE_FLOW_WITH, after, _LATER)
    return problems


def _check_condition(value: Any, path: Path, allowed: frozenset[str], scope: _Scope, step: int | None) -> list[Problem]:
    """An ``if:`` holds a bare expression or one ``$<< >>``; both forms are accepted."""
    if not isinstance(value, str):
        return []
    if OPEN in value:
        return _check_templates(value, path, allowed, scope, step)
    try:
        compiled = compile_expression(value)
    except ExpressionError as exc:
        return [Problem(path, cut(exc.message), offset=max(exc.position, 1))]
    return _check_references(compiled, 1, path, allowed, scope, step=step)


def _check_templates(
    value: Any, path: Path, allowed: frozenset[str], scope: _Scope, step: int | None = None
) -> list[Problem]:
    problems: list[Problem] = []
    for where, text in walk_templates(value, path):
        try:
            template: Template = parse_template(text)
        except ExpressionError as exc:
            problems.append(Problem(where, cut(exc.message), offset=max(exc.position, 1)))
            continue
        for offset, compiled in template.expressions:
            problems += _check_references(compiled, offset, where, allowed, scope, step=step)
    return problems


def _check_references(
    compiled: CompiledExpression,
    offset: int,
    path: Path,
    allowed: frozenset[str],
    scope: _Scope,
    *,
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
    context: str, path: tuple[Any, ...], allowed: frozenset[str], scope: _Scope, step: int | None
) -> str | None:
    if context not in allowed:
        if context == "secrets" and scope.flow:
            return (
                f"secrets cannot be used in {scope.flow}'s with: it is evaluated in the workflow, "
                "whose history keeps it"
            )
        if context == "secrets":
            return "secrets can only be used in a step's with: and env: (they are resolved on the agent)"
        return f"context '{name(context)}' is not available here (available: {', '.join(sorted(allowed))})"
    if context == "loop" and not scope.in_loop:
        return "loop is only available in the steps of a flow/loop (and its break-if)"
    head = path[0] if path and isinstance(path[0], str) else None
    if head is None:
        return None
    # Names in expressions are case-insensitive, as in GitHub Actions.
    low = head.lower()
    if context == "steps":
        first = (scope.steps or {}).get(low)
        if first is None:
            holder = (scope.nested or {}).get(low)
            if holder is not None:
                return (
                    f"step '{name(head)}' runs inside {format_path(holder)} and is not visible here; "
                    "read its results through that step's outputs"
                )
            return f"unknown step '{name(head)}' in job '{name(scope.job_id)}'"
        if first == _ENCLOSING:
            return f"step '{name(head)}' has not finished here: this place is inside it"
        if step is not None and first >= step:
            return f"step '{name(head)}' runs later in job '{name(scope.job_id)}'; only earlier steps can be referenced"
        return None
    if context == "needs" and low not in scope.needs:
        return f"job '{name(head)}' is not in this job's needs (needs: {scope.needs_listed})"
    if context == "inputs" and low not in scope.inputs:
        return f"unknown input '{name(head)}' (declared inputs: {scope.inputs_listed})"
    if context == "matrix" and not scope.has_matrix:
        return "matrix is only available in a job with strategy.matrix"
    return None
