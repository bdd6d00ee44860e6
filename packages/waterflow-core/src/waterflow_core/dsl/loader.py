"""``load_workflow``: strict YAML → pydantic models → static checks, with every error placed."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import ErrorItem, WorkflowValidationError, format_path
from .checks import Problem, check_workflow
from .models import Workflow
from .strict_yaml import YamlDocument, load_strict_yaml

Path = tuple[str | int, ...]
NodeChecker = Callable[[str, dict[str, Any]], Sequence[tuple[Path, str]]]
"""``(uses, with) -> [(path inside with, message)]``: node-specific ``with:`` validation."""


def load_workflow(
    text: str | bytes, *, source: str | None = None, node_checker: NodeChecker | None = None
) -> Workflow:
    """Parse and validate a workflow; raise :class:`WorkflowValidationError` listing every problem.

    ``node_checker`` validates each step's ``with:`` against its node's inputs; without it only
    the DSL itself is checked (as ``waterflow validate`` does offline).
    """
    doc = load_strict_yaml(text, source=source)
    if not isinstance(doc.data, dict):
        raise WorkflowValidationError(
            [ErrorItem(line=1, column=1, path="", message="a workflow must be a mapping with at least 'name' and 'jobs'")],
            source=source,
        )
    problems: list[Problem] = []
    workflow: Workflow | None = None
    try:
        workflow = Workflow.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(doc.data, exc))
    problems.extend(check_workflow(doc.data))
    if workflow is not None and node_checker is not None:
        problems.extend(_node_problems(workflow, node_checker))
    if problems:
        raise WorkflowValidationError(_dedupe(_place(doc, p) for p in problems), source=source)
    assert workflow is not None
    return workflow


def _node_problems(workflow: Workflow, node_checker: NodeChecker) -> list[Problem]:
    problems: list[Problem] = []
    for job_id, job in workflow.jobs.items():
        for index, step in enumerate(job.steps):
            base: Path = ("jobs", job_id, "steps", index)
            targets: list[tuple[Path, BaseModel]] = [(base, step)]
            if step.compensate is not None:
                targets.append(((*base, "compensate"), step.compensate))
            for path, target in targets:
                with_ = getattr(target, "with_")
                for sub, message in node_checker(getattr(target, "uses"), with_):
                    where = (*path, "with", *sub) if with_ or sub else (*path, "uses")
                    problems.append(Problem(where, message))
    return problems


def _pydantic_problems(data: Any, exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        kind = err["type"]
        if err["loc"] and err["loc"][-1] == "[key]":
            # An invalid mapping key (e.g. a job id): point at the key itself.
            loc = _existing_prefix(data, err["loc"][:-1])
            problems.append(Problem(loc, _friendly(err["msg"], err.get("input")), on_key=True))
            continue
        loc = _existing_prefix(data, err["loc"])
        if kind == "extra_forbidden":
            key = str(err["loc"][-1])
            message = f"unknown key '{key}'" + _suggest(key, _known_keys(err["loc"][:-1]))
            problems.append(Problem(loc, message, on_key=True))
        elif kind == "missing":
            problems.append(Problem(loc, f"missing required key '{err['loc'][-1]}'"))
        else:
            message = err["msg"].removeprefix("Value error, ")
            problems.append(Problem(loc, _friendly(message, err.get("input"))))
    return problems


def _friendly(message: str, value: Any) -> str:
    if message.startswith("String should match pattern"):
        return f"{value!r} is not a valid identifier or node type here"
    if isinstance(value, str) and "valid" in message:
        return f"{message}, got {value!r}"
    return message


def _existing_prefix(data: Any, loc: Sequence[str | int]) -> Path:
    """The longest prefix of ``loc`` that exists in ``data`` (pydantic adds union member tags)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
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


def _known_keys(loc: Sequence[str | int]) -> list[str]:
    """Keys accepted at ``loc`` in the model tree, for "did you mean" hints."""
    from . import models

    model: type[BaseModel] | None = models.Workflow
    shapes: dict[str, type[BaseModel]] = {
        "defaults": models.Defaults,
        "retry": models.Retry,
        "strategy": models.Strategy,
        "compensate": models.Compensate,
    }
    i = 0
    while model is not None and i < len(loc):
        part = loc[i]
        if model is models.Workflow and part == "jobs":
            model, i = models.Job, i + 2
        elif model is models.Workflow and part == "inputs":
            model, i = models.InputSpec, i + 2
        elif model is models.Job and part == "steps":
            model, i = models.Step, i + 2
        elif isinstance(part, str) and part in shapes:
            model, i = shapes[part], i + 1
        else:
            return []
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; expected one of: {', '.join(known)}" if known else ""


def _place(doc: YamlDocument, problem: Problem) -> ErrorItem:
    if problem.on_key and problem.path:
        pos = doc.key_position(problem.path)
        line, column = pos.line, pos.column
    else:
        pos = doc.value_position(problem.path)
        line, column = pos.line, pos.column
        if problem.offset:
            line, column = _offset_position(doc, problem.path, line, column, problem.offset)
    return ErrorItem(line=line, column=column, path=format_path(problem.path), message=problem.message)


def _offset_position(doc: YamlDocument, path: Path, line: int, column: int, offset: int) -> tuple[int, int]:
    """Map a 1-based character offset inside a scalar's text to a line and column in the YAML."""
    text = _value_at(doc.data, path)
    if not isinstance(text, str):
        return line, column
    style = doc.scalar_style(path)
    before = text[: offset - 1]
    newlines = before.count("\n")
    if style in ("|", ">"):
        # Block scalar content starts on the next line; its indentation is not kept in the text.
        return line + 1 + newlines, len(before) - before.rfind("\n")
    if newlines:
        return line + newlines, len(before) - before.rfind("\n")
    return line, column + len(before) + (1 if style in ("'", '"') else 0)


def _value_at(data: Any, path: Path) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _dedupe(items: Any) -> list[ErrorItem]:
    seen: set[tuple[int, int, str, str]] = set()
    out = []
    for item in items:
        key = (item.line, item.column, item.path, item.message)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
