"""Text rendering of the node catalog (``waterflow nodes list`` / ``show``).

Schemas come from a server, so rendering trusts nothing about them: a ``$ref`` cycle, a deep
nesting or a 10 000-character description still renders as a few bounded lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from .models import Node

MAX_TYPE = 48
"""Characters of one rendered schema type."""
MAX_CELL = 100
"""Characters of a description or default in a table."""
_MAX_DEPTH = 4


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Rows in columns as wide as their widest cell (the last column is not padded)."""
    rows = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    ]


def first_line(text: str) -> str:
    """The first line of ``text``, cut to :data:`MAX_CELL` characters."""
    return _cut(text.strip().split("\n", 1)[0], MAX_CELL)


MAX_NAMES = 3
"""Agents or groups named in a list cell; the rest are counted (``a,b,c +247``)."""


def names(items: Sequence[str], limit: int = MAX_NAMES) -> str:
    """``a,b,c +N``: the first ``limit`` names and how many more there are; ``-`` for none."""
    shown = ",".join(items[:limit]) or "-"
    return f"{shown} +{len(items) - limit}" if len(items) > limit else shown


def where_it_runs(node: Node, limit: int = MAX_NAMES) -> tuple[str, str]:
    """The agents and groups of a node, for a list cell or a ``show`` line (``(workflow)`` for
    workflow-side nodes)."""
    if node.workflow_side:
        return "(workflow)", "-"
    return names(node.agents, limit), names(node.groups, limit)


def list_lines(nodes: Sequence[Node], *, local: bool) -> list[str]:
    """``waterflow nodes list``: one line per node type and major version."""
    if not nodes:
        return ["no node types installed here" if local else "no node types known to the server"]
    if local:
        rows = ((n.type, n.version, first_line(n.description)) for n in nodes)
        return table(("TYPE", "VERSION", "DESCRIPTION"), rows)
    placed = ((n.type, n.version, *where_it_runs(n), first_line(n.description)) for n in nodes)
    return table(("TYPE", "VERSION", "AGENTS", "GROUPS", "DESCRIPTION"), placed)


def show_lines(node: Node, *, local: bool, other_majors: Sequence[str] = ()) -> list[str]:
    """``waterflow nodes show``: what the node is, where it runs, its inputs and outputs."""
    lines = [f"{node.type} {node.version}"]
    lines += [f"  {line}" for line in node.description.strip().splitlines()[:20]]
    if other_majors:
        lines.append(f"other major versions: {', '.join(other_majors)} (pin one with uses: {node.type}@<major>)")
    if node.workflow_side:
        lines.append("runs: in the workflow (no agent needed)")
    elif not local:
        agents, groups = where_it_runs(node, limit=20)
        lines += [f"agents: {agents}", f"groups: {groups}"]
    lines.append("")
    if node.inputs_schema is None:
        lines.append(
            "inputs: not known here: the server does not have this node installed, only agents announce it "
            "(`waterflow nodes show --local` where it is installed lists them)"
        )
        return lines
    lines += ["inputs (with:):", *_indent(input_rows(node.inputs_schema))]
    if node.outputs_schema is not None:
        lines += ["", "outputs (steps.<id>.outputs):", *_indent(output_rows(node.outputs_schema))]
    return lines


def _indent(lines: list[str]) -> list[str]:
    return [f"  {line}" for line in lines]


def input_rows(schema: dict[str, Any]) -> list[str]:
    """The inputs of a ``with:`` schema as a table: name, type, required, default, description;
    required inputs first."""
    properties, required = _properties(schema)
    if not properties:
        return ["(none)"]
    rows = []
    # Required inputs first (what a step must write), otherwise in the author's order.
    for key, prop in sorted(properties.items(), key=lambda item: item[0] not in required):
        default = _cut(json.dumps(prop["default"], ensure_ascii=False), MAX_CELL) if "default" in prop else "-"
        needed = "yes" if key in required else "no"
        rows.append((key, type_text(prop, schema), needed, default, first_line(str(prop.get("description", "")))))
    return table(("NAME", "TYPE", "REQUIRED", "DEFAULT", "DESCRIPTION"), rows)


def output_rows(schema: dict[str, Any]) -> list[str]:
    """The outputs of an outputs schema as a table: name, type, description."""
    properties, _ = _properties(schema)
    if not properties:
        return ["(none)"]
    rows = [
        (key, type_text(prop, schema), first_line(str(prop.get("description", ""))))
        for key, prop in properties.items()
    ]
    return table(("NAME", "TYPE", "DESCRIPTION"), rows)


def _properties(schema: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}, set()
    required = schema.get("required")
    shown = {str(k): v if isinstance(v, dict) else {} for k, v in properties.items()}
    return shown, {str(r) for r in required} if isinstance(required, list) else set()


def type_text(prop: dict[str, Any], root: dict[str, Any]) -> str:
    """A property's JSON schema as a short type: ``string``, ``list[integer]``, ``'bash' | 'sh'``."""
    return _cut(_type(prop, root, 0), MAX_TYPE)


def _type(schema: Any, root: dict[str, Any], depth: int) -> str:
    if not isinstance(schema, dict):
        return "any"
    if depth > _MAX_DEPTH:
        return "..."
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _type(_resolve(ref, root), root, depth + 1)
    if "const" in schema:
        return _literal(schema["const"])
    if isinstance(schema.get("enum"), list):
        return " | ".join(_literal(v) for v in schema["enum"][:10])
    for key in ("anyOf", "oneOf", "allOf"):
        members = schema.get(key)
        if isinstance(members, list):
            shown = [_type(m, root, depth + 1) for m in members[:10]]
            shown = [t for t in shown if t != "null"] or shown
            return " | ".join(dict.fromkeys(shown))
    kind = schema.get("type")
    if kind == "array":
        return f"list[{_type(schema.get('items', {}), root, depth + 1)}]"
    if kind == "object":
        if isinstance(schema.get("properties"), dict):
            return "{" + ", ".join(sorted(str(k) for k in schema["properties"])[:10]) + "}"
        extra = schema.get("additionalProperties")
        return f"mapping[{_type(extra, root, depth + 1)}]" if isinstance(extra, dict) else "mapping"
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind[:10])
    return "any"


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    """A local ``#/$defs/Name`` reference (anything else is unknown: ``any``)."""
    if not ref.startswith("#/"):
        return None
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, dict) else None
    return target


def _literal(value: Any) -> str:
    return repr(value) if isinstance(value, str) else json.dumps(value)
