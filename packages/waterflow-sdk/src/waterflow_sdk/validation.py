"""``waterflow validate``: one workflow file checked here or by a server, as one result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waterflow_core.dsl import load_workflow
from waterflow_core.errors import ErrorItem, WorkflowValidationError

from .local_nodes import LocalNodes


@dataclass
class FileResult:
    """The problems of one file, and the ``uses:`` whose ``with:`` nobody could check yet."""

    file: str
    errors: list[ErrorItem] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    text: str = ""
    """The file's text, to quote the lines the problems are on."""

    def as_json(self) -> dict[str, Any]:
        """The ``--output json`` entry of this file."""
        return {
            "file": self.file,
            "valid": not self.errors,
            "errors": [item.model_dump() for item in self.errors],
            "unchecked": self.unchecked,
        }


def _unreadable(path: Path, reason: str) -> FileResult:
    return FileResult(str(path), [ErrorItem(line=0, column=0, path="", message=f"cannot read: {reason}")])


def check_here(path: Path, nodes: LocalNodes) -> FileResult:
    """Check ``path`` against the DSL and the nodes installed in this environment."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        return _unreadable(path, exc.strerror or str(exc))
    nodes.unchecked.clear()
    result = FileResult(str(path), text=text.decode("utf-8", errors="replace"))
    try:
        load_workflow(text, source=str(path), node_checker=nodes)
    except WorkflowValidationError as exc:
        result.errors = exc.errors
    result.unchecked = sorted(nodes.unchecked)
    return result


def check_on_server(path: Path, client: Any) -> FileResult:
    """Check ``path`` with ``POST /v1/validate`` (the server's and its live agents' catalog)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return _unreadable(path, exc.strerror or str(exc))
    except UnicodeDecodeError as exc:
        return _unreadable(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    verdict = client.check(text)
    return FileResult(str(path), list(verdict.errors), list(verdict.unchecked), text)
