"""Node reference pages stay in sync with the installed nodes' models.

For every node type installed here (loaded as the server loads them), the page
``docs/reference/nodes/<type with / replaced by ->.md`` must exist and follow the node page format:

- line 1 is ``# `<type>```; a line ``Package: `<distribution>` ...`` names the distribution that
  provides the node;
- one section ``## `<type>@<major>``` per installed major, holding a ```yaml example that is a
  complete workflow using the node, ``### Inputs``, ``### Outputs (`steps.<id>.outputs.*`)`` and
  ``### Failure``;
- the Inputs table (header ``| input | type | default | meaning |``) has one row per input alias,
  no more, no less; the type cell says ``required`` exactly when the input is required; the
  default cell follows :func:`default_problem`;
- the Outputs table (header ``| output | type | meaning |``) has one row per output alias, plus
  a row ``| *any name* | ...`` exactly when the model accepts extra outputs.

Every ```yaml example of a page must pass the ``with:`` checks of the installed nodes, and every
page must belong to an installed node. Each failure names the page, the line, the row or field,
and what the model says, all at once, so a node author fixes a page in one go.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from waterflow_core.dsl import format_duration, load_workflow, parse_duration
from waterflow_core.errors import WorkflowValidationError
from waterflow_core.node import Node
from waterflow_core.plugins import PluginManager
from waterflow_core.registry import NodeRegistry

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
PAGES = REPO / "docs" / "reference" / "nodes"
INPUTS_HEADER = ["input", "type", "default", "meaning"]
OUTPUTS_HEADER = ["output", "type", "meaning"]
OUTPUTS_HEADING = "### Outputs (`steps.<id>.outputs.*`)"
DYNAMIC_ROW = "*any name*"
FRAGMENT_WORKFLOW = "name: fragment\njobs:\n  fragment:\n    runs-on: local\n    steps:\n"
FORMAT_HINT = "see the node page format in tests/test_node_docs.py and docs/reference/nodes/http-request.md"

PLUGINS = PluginManager(strict=False)  # as the server loads them: a broken plugin is reported, not fatal
REGISTRY = NodeRegistry.from_plugins(PLUGINS)
TYPES = sorted({node.type for node in REGISTRY})


def page_for(node_type: str) -> Path:
    """The reference page of ``node_type``."""
    return PAGES / f"{node_type.replace('/', '-')}.md"


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# -- reading a page -----------------------------------------------------------------------------


@dataclass
class Block:
    """A fenced ```yaml block (Waterflow YAML, not ```yaml github-actions)."""

    line: int
    text: str


@dataclass
class Part:
    """A heading and the lines under it up to the next heading of the same or a higher level."""

    heading: str
    line: int
    lines: list[tuple[int, str]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)


def read_page(path: Path) -> tuple[list[str], list[Block]]:
    """The page's lines and its ```yaml blocks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    fence: tuple[int, str] | None = None
    body: list[str] = []
    for number, text in enumerate(lines, 1):
        if fence is None and text.startswith("```"):
            fence, body = (number, text[3:].strip()), []
        elif fence is not None and text.startswith("```"):
            if fence[1] == "yaml":
                blocks.append(Block(fence[0], "\n".join(body) + "\n"))
            fence = None
        elif fence is not None:
            body.append(text)
    return lines, blocks


def parts(lines: list[str], blocks: list[Block], level: int, start: int = 1) -> list[Part]:
    """Split ``lines`` (numbered from ``start``) at headings of ``level`` (``#`` count), outside fences."""
    found: list[Part] = []
    in_fence = False
    for number, text in enumerate(lines, start):
        if text.startswith("```"):
            in_fence = not in_fence
        marks = re.match(r"(#{1,6}) ", text)
        heading = not in_fence and marks is not None and len(marks[1]) <= level
        if heading and len(marks[1]) == level:
            found.append(Part(text.strip(), number))
        elif heading:  # a higher-level heading ends the current part
            found.append(Part("", number))
        elif found:
            found[-1].lines.append((number, text))
    for part in found:
        end = part.lines[-1][0] if part.lines else part.line
        part.blocks = [b for b in blocks if part.line < b.line <= end]
    return [p for p in found if p.heading]


def subparts(part: Part, level: int) -> dict[str, Part]:
    if not part.lines:
        return {}
    return {p.heading: p for p in parts([t for _, t in part.lines], part.blocks, level, part.lines[0][0])}


@dataclass
class Table:
    """The first Markdown table of a part."""

    line: int
    header: list[str]
    rows: list[tuple[int, list[str]]]


def first_table(part: Part) -> Table | None:
    table: Table | None = None
    for number, text in part.lines:
        if text.startswith("|"):
            cells = split_row(text)
            if table is None:
                table = Table(number, cells, [])
            elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
                table.rows.append((number, cells))
        elif table is not None:
            break
    return table


def split_row(text: str) -> list[str]:
    """Cells of a table row; ``\\|`` is a pipe inside a cell."""
    inner = text.strip().removeprefix("|").removesuffix("|")
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", inner)]


# -- what the models say ------------------------------------------------------------------------


def fields_by_alias(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The keys a user writes (or reads): each field's alias, else its name."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


def default_of(info: FieldInfo) -> Any:
    """The field's default value (calling a factory), or ``...`` when it is required."""
    if info.is_required():
        return ...
    return info.get_default(call_default_factory=True, validated_data={})


def default_problem(alias: str, info: FieldInfo, type_cell: str, default_cell: str) -> str | None:
    """What is wrong with the default cell of input ``alias`` (``None``: nothing).

    - A required input has an empty default cell.
    - A boolean default: the cell starts with `` `true` `` or `` `false` ``.
    - A string or enum default: the cell starts with the value in backticks (`` `bash` ``).
    - A number: when the type cell says ``duration``, the cell starts with a duration in backticks
      that means the same number of seconds (`` `30s` `` for 30.0); otherwise with the number in
      backticks (`` `262144` ``: sizes in bytes, a readable form may follow, ``(256 KiB)``).
    - An empty list or map: the cell starts with `` `[]` `` or `` `{}` ``.
    - Anything else (no default, ``None``, an object): free text, e.g. "the system's CAs".
    """
    value = default_of(info)
    code = re.match(r"`([^`]*)`", default_cell)
    shown = code.group(1) if code else None
    if value is ...:
        if default_cell:
            return f"a required input has no default, so the cell must be empty, got {default_cell!r}"
        return None
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        expected = "true" if value else "false"
        if shown == expected:
            return None
        return f"the model's default is {value}: the cell must start with `{expected}`, got {default_cell!r}"
    if isinstance(value, int | float):
        if re.search(r"\bduration\b", type_cell):
            seconds = _duration_seconds(shown)
            if seconds is not None and math.isclose(seconds, value):
                return None
            return (
                f"the model's default is {value} seconds: the cell must start with a duration meaning that "
                f"(`{format_duration(value)}`), got {default_cell!r}"
            )
        if shown is not None and _number(shown) == value:
            return None
        return f"the model's default is {value}: the cell must start with `{value}`, got {default_cell!r}"
    if isinstance(value, str):
        if shown == value:
            return None
        return f"the model's default is {value!r}: the cell must start with `{value}`, got {default_cell!r}"
    if isinstance(value, list | dict) and not value:
        expected = "[]" if isinstance(value, list) else "{}"
        if shown == expected:
            return None
        return f"the model's default is empty: the cell must start with `{expected}`, got {default_cell!r}"
    return None


def _duration_seconds(text: str | None) -> float | None:
    try:
        return None if text is None else parse_duration(text)
    except (TypeError, ValueError):
        return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# -- the checks ---------------------------------------------------------------------------------


def check_page(node_type: str, page: Path | None = None) -> list[str]:
    """Every problem of ``node_type``'s page (default: its place in the docs), each naming page,
    line and what the model says."""
    majors = {node.major(): node for node in REGISTRY if node.type == node_type}
    page = page or page_for(node_type)
    where = rel(page) if page.is_relative_to(REPO) else str(page)
    if not page.exists():
        installed = ", ".join(f"{node_type}@{m}" for m in sorted(majors))
        return [f"{where} is missing: {installed} is installed; write it ({FORMAT_HINT})"]
    lines, blocks = read_page(page)
    problems: list[str] = []
    if not lines or lines[0] != f"# `{node_type}`":
        problems.append(f"{where}:1: the title must be exactly '# `{node_type}`'")
    distribution = REGISTRY.entry(f"{node_type}@{max(majors)}").plugin.distribution
    if not any(line.startswith(f"Package: `{distribution}`") for line in lines):
        problems.append(f"{where}: needs a line starting 'Package: `{distribution}`' (the distribution providing it)")
    sections = {p.heading: p for p in parts(lines, blocks, 2)}
    for heading, section in sections.items():
        match = re.fullmatch(r"## `([^`@]+)@(\d+)`", heading)
        if match and (match[1] != node_type or int(match[2]) not in majors):
            problems.append(
                f"{where}:{section.line}: section '{heading}' documents a node that is not installed "
                f"(installed here: {', '.join(f'{node_type}@{m}' for m in sorted(majors))})"
            )
    for major, node in sorted(majors.items()):
        heading = f"## `{node_type}@{major}`"
        if heading not in sections:
            problems.append(f"{where}: no section '{heading}' for the installed {node.__qualname__} {node.version}")
            continue
        problems += check_section(where, node, sections[heading])
    problems += check_examples(where, blocks)
    return problems


def check_section(where: str, node: type[Node], section: Part) -> list[str]:
    problems: list[str] = []
    label = f"{where}:{section.line} ({node.type}@{node.major()})"
    uses = {node.type, f"{node.type}@{node.major()}"}
    if not any(_complete_workflow_using(block, uses) for block in section.blocks):
        problems.append(f"{label}: needs a ```yaml example that is a complete workflow (name, jobs) using {node.type}")
    subs = subparts(section, 3)
    inputs, outputs = subs.get("### Inputs"), subs.get(OUTPUTS_HEADING)
    if inputs is None:
        problems.append(f"{label}: no '### Inputs' subsection")
    else:
        problems += check_inputs(where, node, inputs)
    if outputs is None:
        problems.append(f"{label}: no '{OUTPUTS_HEADING}' subsection")
    else:
        problems += check_outputs(where, node, outputs)
    if "### Failure" not in subs:
        problems.append(f"{label}: no '### Failure' subsection (what fails the step, with which error type)")
    return problems


def _table(where: str, part: Part, header: list[str]) -> tuple[Table | None, list[str]]:
    table = first_table(part)
    if table is None:
        return None, [f"{where}:{part.line}: '{part.heading}' has no table"]
    if table.header != header:
        wanted = "| " + " | ".join(header) + " |"
        return None, [f"{where}:{table.line}: the table header must be '{wanted}', got {table.header}"]
    return table, []


def _rows(where: str, table: Table, width: int) -> tuple[dict[str, tuple[int, list[str]]], list[str]]:
    rows: dict[str, tuple[int, list[str]]] = {}
    problems: list[str] = []
    for number, cells in table.rows:
        name = cells[0]
        if len(cells) != width:
            problems.append(f"{where}:{number}: row {name!r} has {len(cells)} cells, the header {width}")
        elif name in rows:
            problems.append(f"{where}:{number}: {name} is listed twice (also on line {rows[name][0]})")
        else:
            rows[name] = (number, cells)
    return rows, problems


def check_inputs(where: str, node: type[Node], part: Part) -> list[str]:
    table, problems = _table(where, part, INPUTS_HEADER)
    if table is None:
        return problems
    rows, problems = _rows(where, table, len(INPUTS_HEADER))
    model = fields_by_alias(node.Inputs)
    expected = {f"`{alias}`": alias for alias in model}
    for cell, alias in expected.items():
        if cell not in rows:
            info = model[alias]
            problems.append(
                f"{where}:{table.line}: input {alias} is missing from the Inputs table "
                f"(model: {'required' if info.is_required() else 'optional'}, {info.description or 'no description'})"
            )
    for cell, (number, cells) in rows.items():
        alias = expected.get(cell)
        if alias is None:
            problems.append(
                f"{where}:{number}: the Inputs table lists {cell}, which {node.type}@{node.major()} does not have "
                f"(its inputs: {', '.join(sorted(model))}); one row per input, the alias in backticks"
            )
            continue
        info, type_cell, default_cell = model[alias], cells[1], cells[2]
        says_required = bool(re.search(r"\brequired\b", type_cell))
        if says_required != info.is_required():
            state = "required" if info.is_required() else "optional"
            fix = "add 'required' to" if info.is_required() else "remove 'required' from"
            problems.append(f"{where}:{number}: input {alias} is {state} in the model: {fix} its type {type_cell!r}")
        problem = default_problem(alias, info, type_cell, default_cell)
        if problem:
            problems.append(f"{where}:{number}: input {alias}: {problem}")
    return problems


def check_outputs(where: str, node: type[Node], part: Part) -> list[str]:
    table, problems = _table(where, part, OUTPUTS_HEADER)
    if table is None:
        return problems
    rows, problems = _rows(where, table, len(OUTPUTS_HEADER))
    model = fields_by_alias(node.Outputs)
    dynamic = node.Outputs.model_config.get("extra") == "allow"
    expected = {f"`{alias}`" for alias in model} | ({DYNAMIC_ROW} if dynamic else set())
    for cell in sorted(expected - rows.keys()):
        what = "outputs any name (extra='allow'): add a row '| *any name* | ...'" if cell == DYNAMIC_ROW else "has it"
        problems.append(f"{where}:{table.line}: output {cell} is missing from the Outputs table (the model {what})")
    for cell in sorted(rows.keys() - expected):
        why = " (only for models with extra='allow')" if cell == DYNAMIC_ROW else ""
        problems.append(
            f"{where}:{rows[cell][0]}: the Outputs table lists {cell}, which {node.type}@{node.major()} does not "
            f"output{why} (its outputs: {', '.join(sorted(model))})"
        )
    return problems


def _complete_workflow_using(block: Block, uses: set[str]) -> bool:
    if _is_step_list(block.text):
        return False
    try:
        workflow = load_workflow(block.text)
    except WorkflowValidationError:
        return False  # reported by check_examples
    steps = [step for job in workflow.jobs.values() for step in job.steps]
    return any(s.uses in uses or (s.compensate is not None and s.compensate.uses in uses) for s in steps)


def check_examples(where: str, blocks: list[Block]) -> list[str]:
    """Each ```yaml block must pass the ``with:`` checks of the installed nodes (as ``POST /v1/validate``)."""
    problems = []
    for block in blocks:
        text, shift = block.text, (0, 0)
        if _is_step_list(text):  # a fragment of steps: checked inside a one-job workflow, as tests/ do
            text, shift = FRAGMENT_WORKFLOW + textwrap.indent(text, " " * 6), (FRAGMENT_WORKFLOW.count("\n"), 6)
        try:
            load_workflow(text, node_checker=_installed_only)
        except WorkflowValidationError as err:
            for item in err.errors:  # placed on the page: the block's text starts after its fence line
                line, column = block.line + item.line - shift[0], max(item.column - shift[1], 1)
                problems.append(f"{where}:{line}:{column}: ```yaml example fails validation: {item}")
    return problems


def _installed_only(uses: str, with_data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    # Nodes that are not installed here are another page's business (and perhaps another test run's).
    return REGISTRY.check_with(uses, with_data) if uses in REGISTRY else []


def _is_step_list(text: str) -> bool:
    content = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return bool(content) and content[0].startswith("- ")


def _orphans() -> Iterator[str]:
    pages = {page_for(t).name for t in TYPES}
    for page in sorted(PAGES.glob("*.md")):
        if page.name not in pages:
            yield (
                f"{rel(page)} belongs to no installed node type (installed: {', '.join(TYPES)}); "
                "remove it, rename it after its type, or install its package in the test environment"
            )
    if PLUGINS.errors:
        yield "plugins that failed to load (their nodes are missing above): " + "; ".join(PLUGINS.errors)


# -- tests --------------------------------------------------------------------------------------


def test_nodes_are_installed() -> None:
    assert {"exec/shell", "exec/script"} <= set(TYPES), (TYPES, PLUGINS.errors)


@pytest.mark.parametrize("node_type", TYPES)
def test_node_page_matches_the_model(node_type: str) -> None:
    problems = check_page(node_type)
    assert not problems, "\n".join([f"{len(problems)} problem(s) in the page of {node_type}:", *problems])


def test_every_node_page_belongs_to_an_installed_node() -> None:
    orphans = list(_orphans())
    assert not orphans, "\n".join(orphans)


def _drifted(tmp_path: Path, node_type: str, edits: list[tuple[str, str]]) -> Path:
    text = page_for(node_type).read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, f"the page of {node_type} changed: update this test's edit {old!r}"
        text = text.replace(old, new, 1)
    page = tmp_path / page_for(node_type).name
    page.write_text(text, encoding="utf-8")
    return page


def test_the_checker_reports_each_kind_of_drift(tmp_path: Path) -> None:
    page = _drifted(
        tmp_path,
        "exec/shell",
        [
            ("| `command` | string, required |", "| `command` | string |"),
            ("| `shell` | `bash` \\| `sh` | `bash` |", "| `shell` | `bash` \\| `sh` | `sh` |"),
            ("| integer ≥ 0 | `65536` |", "| integer ≥ 0 | `64 KiB` |"),
            ("| `stdin` |", "| `input` |"),
            ("| *any name* |", "| `exit_code` |"),
            ("env: {MAKEFLAGS: -j4}\n", "env: {MAKEFLAGS: -j4}\n          comand: x\n"),
        ],
    )
    report = "\n".join(check_page("exec/shell", page))
    for expected in (
        "input command is required in the model: add 'required' to its type 'string'",
        "input shell: the model's default is 'bash': the cell must start with `bash`",
        "input output-cap: the model's default is 65536: the cell must start with `65536`, got '`64 KiB`'",
        "input stdin is missing from the Inputs table",
        "the Inputs table lists `input`, which exec/shell@1 does not have",
        "output *any name* is missing from the Outputs table",
        "the Outputs table lists `exit_code`, which exec/shell@1 does not output",
        "exec-shell.md:31:11: ```yaml example fails validation: ",  # the page's line and column
        "'comand'",
    ):
        assert expected in report, f"{expected!r} not in:\n{report}"
    assert str(page) in report


def test_durations_and_structure_drift_are_reported(tmp_path: Path) -> None:
    page = _drifted(
        tmp_path,
        "http/request",
        [
            ("| `timeout` | duration | `30s` |", "| `timeout` | duration | `1m` |"),
            ("## `http/request@1`", "## `http/request@2`"),
        ],
    )
    report = "\n".join(check_page("http/request", page))
    assert "section '## `http/request@2`' documents a node that is not installed" in report
    assert "no section '## `http/request@1`'" in report
    timeout = "| `timeout` | duration | `30s` |"
    page = _drifted(tmp_path, "http/request", [(timeout, timeout.replace("30s", "1m"))])
    report = "\n".join(check_page("http/request", page))
    assert "input timeout: the model's default is 30.0 seconds: the cell must start with a duration" in report
    page = _drifted(tmp_path, "http/request", [(timeout, timeout.replace("30s", "30000ms"))])
    assert check_page("http/request", page) == []
