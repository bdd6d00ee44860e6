"""Rendering of the node catalog: readable for real schemas, bounded for hostile ones."""

from __future__ import annotations

from typing import Any

from waterflow_sdk.models import Node
from waterflow_sdk.node_tables import MAX_CELL, MAX_TYPE, input_rows, list_lines, show_lines, type_text


def test_types_read_like_the_yaml_a_user_writes() -> None:
    root: dict[str, Any] = {"$defs": {"Auth": {"type": "object", "properties": {"user": {}, "token": {}}}}}
    cases = [
        ({"type": "string"}, "string"),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, "integer"),
        ({"type": "array", "items": {"type": "integer"}}, "list[integer]"),
        ({"type": "object", "additionalProperties": {"type": "string"}}, "mapping[string]"),
        ({"type": "object"}, "mapping"),
        ({"enum": ["PUT", "POST"]}, "'PUT' | 'POST'"),
        ({"const": 3}, "3"),
        ({"$ref": "#/$defs/Auth"}, "{token, user}"),
        ({}, "any"),
    ]
    for schema, shown in cases:
        assert type_text(schema, root) == shown


def test_hostile_schemas_render_bounded() -> None:
    cyclic: dict[str, Any] = {"$defs": {"A": {"type": "array", "items": {"$ref": "#/$defs/A"}}}}
    assert type_text({"$ref": "#/$defs/A"}, cyclic).startswith("list[list[")
    assert len(type_text({"$ref": "#/$defs/A"}, cyclic)) <= MAX_TYPE
    assert type_text({"$ref": "https://evil.example/schema"}, {}) == "any"
    wide = {"anyOf": [{"const": "x" * 1000} for _ in range(1000)]}
    assert len(type_text(wide, {})) <= MAX_TYPE
    schema = {
        "properties": {"a": {"description": "d" * 10_000, "default": "v" * 10_000}, "b": "not a schema", 7: {}},
        "required": "a",
    }
    rows = input_rows(schema)
    assert len(rows) == 4 and all(len(row) < MAX_TYPE + 3 * MAX_CELL for row in rows)


def test_many_agents_are_counted_not_listed() -> None:
    agents = [f"agent-{i:03d}" for i in range(250)]
    node = Node(type="exec/shell", version="1.0.0", agents=agents, groups=["g"], inputs_schema={})
    [_, row] = list_lines([node], local=False)
    assert "agent-000,agent-001,agent-002 +247" in row and len(row) < 120
    shown = show_lines(node, local=False)
    agents_line = next(line for line in shown if line.startswith("agents: "))
    assert agents_line.startswith("agents: agent-000,") and agents_line.endswith(" +230")
    assert shown[-1] == "  (none)"
