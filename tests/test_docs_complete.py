"""Docs move with the code: every CLI command and every installed node type has a reference page."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from waterflow_core.registry import NodeRegistry
from waterflow_sdk.cli import cli

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_cli_command_is_documented() -> None:
    pages = " ".join(p.read_text() for p in (DOCS / "reference" / "cli").glob("*.md"))
    commands = cli.list_commands(click.Context(cli))
    assert {"validate", "schema", "submit", "status", "logs", "cancel", "server", "dev", "agent"} <= set(commands)
    missing = [name for name in commands if f"waterflow {name}" not in pages]
    assert not missing, f"document these commands in docs/reference/cli/: {missing}"


def test_every_installed_node_type_is_documented() -> None:
    pages = " ".join(p.read_text() for p in (DOCS / "reference" / "nodes").glob("*.md"))
    types = {entry["type"] for entry in NodeRegistry.from_plugins().catalog()}
    assert {"exec/shell", "exec/script"} <= types
    missing = sorted(t for t in types if f"`{t}`" not in pages)
    assert not missing, f"document these nodes in docs/reference/nodes/: {missing}"
