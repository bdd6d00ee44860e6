"""Compose files must lie inside the agent's allowed file roots (as ``file/transfer`` paths do).

A compose file is read by compose running as the agent's user, and compose quotes what it cannot
parse in its errors (``file: /etc/shadow`` answers with the first line of the file). So the paths a
workflow may name are confined like ``file/transfer``'s: ``WATERFLOW_FILE_ROOTS`` in the agent's
environment (``os.pathsep``-separated), the step's working directory when unset
(docs/adr/0022-docker-nodes.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import bad_input

ROOTS_ENV = "WATERFLOW_FILE_ROOTS"


def allowed_roots(workdir: Path, environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The real paths of the directories compose files may be in."""
    entries = [entry.strip() for entry in environ.get(ROOTS_ENV, "").split(os.pathsep) if entry.strip()]
    if not entries:
        return [Path(os.path.realpath(workdir))]
    # Relative entries would depend on the agent's cwd at start-up; anchor them to the workdir.
    return [Path(os.path.realpath(Path(workdir) / Path(entry).expanduser())) for entry in entries]


def resolve_file(raw: str, workdir: Path, roots: Sequence[Path]) -> Path:
    """The real path of compose file ``raw`` (relative to ``workdir``), refused outside ``roots``."""
    if not raw or "\0" in raw:
        raise bad_input("file must be a non-empty path without NUL characters", field="file")
    path = Path(raw)
    listed = ", ".join(str(root) for root in roots)
    hint = f"allowed roots: {listed} (set {ROOTS_ENV} on the agent to change them)"
    if ".." in path.parts:
        # Refused rather than normalised: it is how escapes are written.
        raise bad_input(f"file {raw!r} refused: '..' is not allowed in paths; {hint}", field="file")
    real = Path(os.path.realpath(path if path.is_absolute() else Path(workdir) / path))
    if not any(real == root or root in real.parents for root in roots):
        raise bad_input(f"file {raw!r} refused: it resolves to {str(real)!r}, outside the allowed roots; {hint}")
    if not real.is_file():
        raise bad_input(f"file {raw!r}: no such compose file ({str(real)!r})", field="file")
    return real
