"""``load_workflow``: strict YAML → pydantic models → static checks, with every error placed."""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import ErrorItem, WorkflowValidationError, format_path
from . import models
from ._messages import cut, name, quote
from .checks import Problem, check_workflow
from .models import Compensate, Step, Workflow
from .strict_yaml import MAX_ERRORS, YamlDocument, load_strict_yaml

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
        problems.extend(_node_problems(workflow, node_checker))
    if problems:
        raise WorkflowValidationError(_Placer(doc, text).items(problems), source=source)
    assert workflow is not None
    return workflow


def _node_problems(workflow: Workflow, node_checker: NodeChecker) -> list[Problem]:
    problems: list[Problem] = []
    for job_id, job in workflow.jobs.items():
        for index, step in enumerate(job.steps):
            base: Path = ("jobs", job_id, "steps", index)
            targets: list[tuple[Path, Step | Compensate]] = [(base, step)]
            if step.compensate is not None:
                targets.append(((*base, "compensate"), step.compensate))
            for path, target in targets:
                for sub, message in node_checker(target.uses, target.with_):
                    where = (*path, "with", *sub) if target.with_ or sub else (*path, "uses")
                    problems.append(Problem(where, message))
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
            message = f"unknown key '{name(key)}'" + _suggest(key, _known_keys(loc[:-1]))
            problems.append(Problem(_existing_prefix(data, loc), message, on_key=True))
        elif kind == "missing":
            problems.append(Problem(_existing_prefix(data, loc), f"missing required key '{loc[-1]}'"))
        else:
            problems.append(Problem(_existing_prefix(data, loc), _friendly(err)))
    return problems


# Pydantic's type errors in the DSL's words (YAML has mappings, not dictionaries or instances).
_EXPECTED = {
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "list_type": "expected a list",
    "bool_type": "expected a boolean (true or false)",
    "bool_parsing": "expected a boolean (true or false)",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_parsing_size": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
}
_KINDS: dict[type, str] = {dict: "a mapping", list: "a list"}


def _friendly(err: Any) -> str:
    """One pydantic error as a message in the DSL's words, quoting the (shortened) value."""
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    got = _KINDS.get(type(value)) or quote(value)
    if kind in _EXPECTED:
        return f"{_EXPECTED[kind]}, got {got}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the allowed values')}, got {got}"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return f"must have at least {least} {'entry' if least == 1 else 'entries'}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("ge", ctx.get("le"))
        return f"must be at {'least' if kind == 'greater_than_equal' else 'most'} {bound}, got {got}"
    if kind == "string_pattern_mismatch":
        if "/" in str(ctx.get("pattern", "")):  # NodeRef
            return f"{quote(value)} is not a node type: write group/name or group/name@<major>, e.g. exec/shell"
        return (
            f"{quote(value)} is not a valid identifier: use letters, digits, '_' and '-', "
            "starting with a letter or '_' (at most 100 characters)"
        )
    return str(err["msg"]).removeprefix("Value error, ")


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


# Where a key leads in the model tree, and how many path parts it spans (a map or list adds one).
_SUBMODELS: dict[str, tuple[type[BaseModel], int]] = {
    "jobs": (models.Job, 2),
    "steps": (models.Step, 2),
    "inputs": (models.InputSpec, 2),
    "defaults": (models.Defaults, 1),
    "retry": (models.Retry, 1),
    "strategy": (models.Strategy, 1),
    "compensate": (models.Compensate, 1),
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
    return [field.alias or key for key, field in model.model_fields.items()]


def _suggest(key: str, known: list[str]) -> str:
    if not known:
        return ""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) if len(key) <= 100 else []
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (expected one of: {', '.join(known)})"


# --- placing problems in the text --------------------------------------------------------------

_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # libyaml's line breaks
_SPECIAL = re.compile("[\r\n\x85\u2028\u2029'\\\\]")  # where a flow scalar's text and value differ
_FOLD = re.compile("[ \t\r\n\x85\u2028\u2029]*")
_ESCAPE_WIDTH = {"x": 4, "u": 6, "U": 10}  # \xXX, \uXXXX, \UXXXXXXXX; other escapes take two characters


class _Placer:
    """Turns problems into error items: line and column in the text, a readable path, no
    duplicates, at most ``MAX_ERRORS`` of them (the first in text order)."""

    def __init__(self, doc: YamlDocument, text: str | bytes) -> None:
        self._doc = doc
        self._source = text
        self._text: str | None = None  # decoded on the first problem inside a scalar
        self._starts: list[int] = []  # index of each line's first character
        self._cursors: dict[Path, _FlowCursor | _BlockCursor] = {}

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
            line, column = pos.line, pos.column
        else:
            pos = self._doc.value_position(path)
            line, column = pos.line, pos.column
            if problem.offset:
                line, column = self._inside_scalar(path, line, column, problem.offset)
        return ErrorItem(line=line, column=column, path=format_path(path), message=cut(problem.message))

    def _inside_scalar(self, path: Path, line: int, column: int, offset: int) -> tuple[int, int]:
        """The place of the 1-based character ``offset`` of the scalar at ``path`` (which starts at
        ``line``:``column``), undoing what YAML did to the text: quotes, escapes, folded lines,
        block indentation."""
        value = _value_at(self._doc.data, path)
        if not isinstance(value, str):
            return line, column
        text = self._decoded()
        cursor = self._cursors.get(path)
        if cursor is None:
            start = self._starts[line - 1] + column - 1 if line <= len(self._starts) else len(text)
            style = self._doc.scalar_style(path)
            cursor = _BlockCursor(text, start, value) if style in ("|", ">") else _FlowCursor(text, start, style)
            self._cursors[path] = cursor
        index = min(cursor.index(offset - 1), len(text))
        row = bisect.bisect_right(self._starts, index)
        return row, index - self._starts[row - 1] + 1

    def _decoded(self) -> str:
        if self._text is None:
            source = self._source
            text = bytes(source).decode("utf-8") if not isinstance(source, str) else source
            self._text = text.removeprefix("\ufeff")  # libyaml counts columns without it
            self._starts = [0, *(m.end() for m in _BREAK.finditer(self._text))]
        return self._text


class _FlowCursor:
    """Maps offsets in the value of a plain or quoted scalar to indexes in the text. Offsets asked
    in increasing order (as problems in one text come) cost one walk in all."""

    def __init__(self, text: str, start: int, style: str | None) -> None:
        self.text = text
        self.style = style
        self.begin = start + (1 if style in ("'", '"') else 0)
        self.i, self.v = self.begin, 0  # an index in the text and the value offset it holds

    def index(self, target: int) -> int:
        if target < self.v:
            self.i, self.v = self.begin, 0
        text, style, i, v = self.text, self.style, self.i, self.v
        while True:
            match = _SPECIAL.search(text, i)
            stop = match.start() if match else len(text)
            if target - v <= stop - i:  # in a run of characters that stand for themselves
                i, v = i + target - v, target
                break
            run_start, i, v = i, stop, v + stop - i
            if match is None:
                break
            char = text[i]
            if char == "\\" and style == '"':
                escaped_break = _BREAK.match(text, i + 1)
                if escaped_break:  # it and the next line's indentation vanish
                    i = escaped_break.end()
                    while i < len(text) and text[i] in " \t":
                        i += 1
                else:
                    i, v = i + _ESCAPE_WIDTH.get(text[i + 1 : i + 2], 2), v + 1
            elif char == "'" and style == "'":
                if not text.startswith("''", i):
                    break  # the closing quote
                i, v = i + 2, v + 1
            elif char in "'\\":
                i, v = i + 1, v + 1
            else:  # a line break, with the spaces around it and any blank lines: one fold
                while i > run_start and text[i - 1] in " \t":  # trailing spaces are part of it
                    i, v = i - 1, v - 1
                fold = _FOLD.match(text, i)
                end = fold.end() if fold else i + 1  # (it always matches)
                breaks = len(_BREAK.findall(text, i, end))
                width = 1 if breaks == 1 else breaks - 1  # a space, or the blank lines' breaks
                if target < v + width:
                    break
                i, v = end, v + width
        self.i, self.v = i, v
        return i


class _BlockCursor:
    """Maps offsets in the value of a ``|`` or ``>`` scalar to indexes in the text: each content
    line, without its indentation, is found in the value in turn."""

    def __init__(self, text: str, start: int, value: str) -> None:
        self.text = text
        self.value = value
        header = _BREAK.search(text, start)  # content starts on the line after the indicator
        self.begin = self.i = self.last = header.end() if header else len(text)
        self.p = 0  # how much of the value the lines before ``i`` hold

    def index(self, target: int) -> int:
        if target < self.p:
            self.i, self.p, self.last = self.begin, 0, self.begin
        text = self.text
        while self.i < len(text):
            brk = _BREAK.search(text, self.i)
            end = brk.start() if brk else len(text)
            line = text[self.i : end]
            content = line.lstrip(" ")
            if content:
                found = self.value.find(content, self.p)
                if found < 0:
                    break  # past the scalar
                indent = self.i + len(line) - len(content)
                if target < found + len(content):
                    return max(self.i, indent + target - found)
                self.p, self.last = found + len(content), indent + len(content)
            self.i = brk.end() if brk else len(text)
        return self.last


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
