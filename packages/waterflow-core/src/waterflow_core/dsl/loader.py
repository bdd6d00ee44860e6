"""``load_workflow``: strict YAML → pydantic models → static checks, with every error placed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from ..errors import ErrorItem, WorkflowValidationError, format_path
from . import models
from ._messages import cut, name, quote
from .checks import Problem, check_workflow
from .models import Workflow
from .positions import ScalarPlaces
from .pydantic_errors import describe, did_you_mean
from .strict_yaml import MAX_ERRORS, Position, YamlDocument, load_strict_yaml

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class WithProblem:
    """One problem of a step's ``uses:`` or ``with:``; unpacks as ``(path, message)``.

    ``path`` is inside ``with:``; ``on`` says where the error points: the ``uses:`` value (an
    unknown node), the ``key`` at ``path`` (an unknown key; ``()`` is the ``with:`` key itself;
    a missing key points at the key of the mapping that lacks it) or the ``value`` at ``path``.
    """

    path: Path
    message: str
    on: Literal["uses", "key", "value"] = "value"

    def __iter__(self) -> Iterator[Any]:
        yield self.path
        yield self.message


NodeChecker = Callable[[str, dict[str, Any]], Sequence[WithProblem]]
"""``(uses, with) -> problems``: node-specific validation of a step's ``uses`` and ``with:``."""


def load_workflow(
    text: str | bytes, *, source: str | None = None, node_checker: NodeChecker | None = None
) -> Workflow:
    """Parse and validate a workflow; raise :class:`WorkflowValidationError` listing every problem.

    ``node_checker`` validates each step's ``with:`` against its node's inputs; without it only
    the DSL itself is checked (as ``waterflow validate`` does offline).
    """
    doc = load_strict_yaml(text, source=source)
    if not isinstance(doc.data, dict):
        problem = Problem((), "a workflow must be a mapping with at least 'name' and 'jobs'")
        raise WorkflowValidationError(_Placer(doc, text).items([problem]), source=source)
    problems: list[Problem] = []
    workflow: Workflow | None = None
    try:
        workflow = Workflow.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(doc.data, exc))
    problems.extend(check_workflow(doc.data))
    if workflow is not None and node_checker is not None:
        problems.extend(_node_problems(workflow, doc.data, node_checker))
    if problems:
        raise WorkflowValidationError(_Placer(doc, text).items(problems), source=source)
    assert workflow is not None
    return workflow


def _node_problems(workflow: Workflow, data: dict[str, Any], node_checker: NodeChecker) -> list[Problem]:
    problems: list[Problem] = []
    for path, target in models.step_targets(workflow):
        # Without a with: key, problems of its content point at the uses: it belongs to.
        raw = _value_at(data, path)
        has_with = isinstance(raw, dict) and "with" in raw
        for problem in node_checker(target.uses, target.with_):
            if problem.on == "uses" or not has_with:
                problems.append(Problem((*path, "uses"), problem.message))
            else:
                where = (*path, "with", *problem.path)
                problems.append(Problem(where, problem.message, on_key=problem.on == "key"))
    return problems


def _pydantic_problems(data: Any, exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc, kind = err["loc"], err["type"]
        if loc and loc[-1] == "[key]" and _value_at(data, loc) is None:
            # An invalid mapping key (e.g. a job id): point at the key itself.
            problems.append(Problem(_existing_prefix(data, loc[:-1]), _friendly(err), on_key=True))
        elif kind == "extra_forbidden":
            key = str(loc[-1])
            message = f"unknown key '{name(key)}'" + did_you_mean(key, _known_keys(loc[:-1]))
            problems.append(Problem(_existing_prefix(data, loc), message, on_key=True))
        elif kind == "missing":
            problems.append(Problem(_existing_prefix(data, loc), f"missing required key '{loc[-1]}'"))
        else:
            problems.append(Problem(_existing_prefix(data, loc), _friendly(err)))
    return problems


def _friendly(err: Any) -> str:
    """One pydantic error in the DSL's words; the DSL's own patterns get their own explanation."""
    if err["type"] == "string_pattern_mismatch":
        value = err.get("input")
        if "/" in str((err.get("ctx") or {}).get("pattern", "")):  # NodeRef
            return f"{quote(value)} is not a node type: write group/name or group/name@<major>, e.g. exec/shell"
        return (
            f"{quote(value)} is not a valid identifier: use letters, digits, '_' and '-', "
            "starting with a letter or '_' (at most 100 characters)"
        )
    return describe(err)


def _existing_prefix(data: Any, loc: Sequence[str | int]) -> Path:
    """The longest prefix of ``loc`` that exists in ``data`` (pydantic adds union member tags)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:  # noqa: SIM114 - each branch narrows `node` for mypy
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part == loc[-1]:
            out.append(part)  # a missing or unknown key: keep it so the message can name it
            break
        else:
            break
        out.append(part)
    return tuple(out)


# Where a key leads in the model tree, and how many path parts it spans (a map or list adds one).
_SUBMODELS: dict[str, tuple[type[BaseModel], int]] = {
    "jobs": (models.Job, 2),
    "steps": (models.Step, 2),
    "inputs": (models.InputSpec, 2),
    "defaults": (models.Defaults, 1),
    "retry": (models.Retry, 1),
    "strategy": (models.Strategy, 1),
    "compensate": (models.Compensate, 1),
    "check": (models.Check, 1),
}


def _known_keys(loc: Sequence[str | int]) -> list[str]:
    """Keys accepted at ``loc`` (a path pydantic reported, so valid up to its end), for hints."""
    model: type[BaseModel] = models.Workflow
    i = 0
    while i < len(loc):
        part = loc[i]
        entry = _SUBMODELS.get(part) if isinstance(part, str) else None
        if entry is None:
            return []
        model, i = entry[0], i + entry[1]
    # dict.fromkeys: two fields may read the same key (a step's with: and its typed flow view).
    return list(dict.fromkeys(field.alias or key for key, field in model.model_fields.items()))


# --- placing problems in the text --------------------------------------------------------------


class _Placer:
    """Turns problems into error items: line and column in the text, a readable path, no
    duplicates, at most ``MAX_ERRORS`` of them (the first in text order)."""

    def __init__(self, doc: YamlDocument, text: str | bytes) -> None:
        self._doc = doc
        self._source = text
        self._places: ScalarPlaces | None = None

    def items(self, problems: Iterable[Problem]) -> list[ErrorItem]:
        unique: dict[tuple[int, int, str, str], ErrorItem] = {}
        for problem in problems:
            item = self._place(problem)
            unique.setdefault((item.line, item.column, item.path, item.message), item)
        items = sorted(unique.values(), key=lambda e: (e.line, e.column, e.path))
        if len(items) > MAX_ERRORS:  # the rest is summed up where it starts
            first = items[MAX_ERRORS]
            more = f"{len(items) - MAX_ERRORS} more problems from here on are not listed"
            items = [*items[:MAX_ERRORS], ErrorItem(line=first.line, column=first.column, path="", message=more)]
        return items

    def _place(self, problem: Problem) -> ErrorItem:
        path = problem.path
        if problem.on_key and path:
            pos = self._doc.key_position(path)
        else:
            pos = self._doc.value_position(path)
            if problem.offset:
                pos = self._inside_scalar(path, pos, problem.offset)
        return ErrorItem(line=pos.line, column=pos.column, path=format_path(path), message=cut(problem.message))

    def _inside_scalar(self, path: Path, start: Position, offset: int) -> Position:
        """The place of the 1-based character ``offset`` of the scalar at ``path`` (which starts at
        ``start``)."""
        value = _value_at(self._doc.data, path)
        if not isinstance(value, str):
            return start
        if self._places is None:  # decoded on the first problem inside a scalar
            source = self._source
            self._places = ScalarPlaces(bytes(source).decode("utf-8") if not isinstance(source, str) else source)
        return self._places.place(path, start, self._doc.scalar_style(path), value, offset)


def _value_at(data: Any, path: Sequence[str | int]) -> Any:
    """The value at ``path``, or None where there is none (the document holds no None)."""
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data
