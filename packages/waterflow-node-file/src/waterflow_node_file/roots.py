"""Confine agent paths to the allowed roots.

Until the agent has a configuration model for node settings, the roots come from the agent
process's environment variable ``WATERFLOW_FILE_ROOTS`` (``os.pathsep``-separated); without it
the only root is the step's working directory (docs/adr/0016-file-transfer.md says why).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import bad_input

ROOTS_ENV = "WATERFLOW_FILE_ROOTS"


def allowed_roots(workdir: Path, environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The real paths of the directories this agent may read and write files under."""
    raw = environ.get(ROOTS_ENV, "")
    entries = [entry for entry in raw.split(os.pathsep) if entry.strip()]
    if not entries:
        return [Path(os.path.realpath(workdir))]
    # Relative entries would depend on the agent's cwd at start-up; anchor them to the workdir.
    return [Path(os.path.realpath(Path(workdir) / Path(entry.strip()).expanduser())) for entry in entries]


def _within(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _refuse(field: str, raw: str, why: str, roots: Sequence[Path]) -> Exception:
    listed = ", ".join(str(r) for r in roots)
    return bad_input(
        f"{field} {raw!r} refused: {why}; allowed roots: {listed} (set {ROOTS_ENV} on the agent to change them)",
        field=field,
        path=raw,
        roots=[str(r) for r in roots],
    )


def _lexical(field: str, raw: str, workdir: Path, roots: Sequence[Path]) -> Path:
    if not raw:
        raise bad_input(f"{field} is empty", field=field)
    if "\0" in raw:
        raise bad_input(f"{field} contains a NUL character", field=field)
    path = Path(raw)
    # `..` is refused outright rather than normalised: it is how escapes are written, and a path
    # that needs it can always be written without it.
    if ".." in path.parts:
        raise _refuse(field, raw, "'..' is not allowed in paths", roots)
    return path if path.is_absolute() else Path(workdir) / path


@dataclass(frozen=True)
class Destination:
    """Where a file will be written: its real directory and final name, plus the real target."""

    directory: Path
    name: str

    @property
    def path(self) -> Path:
        """The real path of the destination file."""
        return self.directory / self.name


def resolve_destination(raw: str, workdir: Path, roots: Sequence[Path], field: str = "destination") -> Destination:
    """Resolve ``raw`` to a destination inside ``roots`` or raise a non-retryable error.

    Relative paths resolve against ``workdir``. The real path of the parent directory must lie
    inside a root (so a symlinked component leading outside is refused), and an existing
    destination that is a symlink is followed only when its real target is inside a root too:
    the file is then replaced at its real location.
    """
    path = _lexical(field, raw, workdir, roots)
    if not path.name or raw.endswith(("/", os.sep)):
        raise bad_input(f"{field} {raw!r} names a directory; give the file name too", field=field)
    parent = Path(os.path.realpath(path.parent))
    if not _within(parent, roots):
        raise _refuse(field, raw, f"its directory resolves to {str(parent)!r}, outside the allowed roots", roots)
    if not parent.is_dir():
        raise bad_input(f"{field} {raw!r}: directory {str(parent)!r} does not exist", field=field)
    target = parent / path.name
    if target.is_symlink():
        real = Path(os.path.realpath(target))
        if not _within(real, roots):
            raise _refuse(field, raw, f"it is a symlink to {str(real)!r}, outside the allowed roots", roots)
        target = real
        if not target.parent.is_dir():
            raise bad_input(f"{field} {raw!r} is a dangling symlink", field=field)
    if target.is_dir():
        raise bad_input(f"{field} {raw!r} is a directory; give the file name too", field=field)
    return Destination(directory=target.parent, name=target.name)


def resolve_source(raw: str, workdir: Path, roots: Sequence[Path], field: str = "source") -> Path:
    """Resolve an agent-side source file to its real path inside ``roots``."""
    path = _lexical(field, raw, workdir, roots)
    real = Path(os.path.realpath(path))
    if not _within(real, roots):
        raise _refuse(field, raw, f"it resolves to {str(real)!r}, outside the allowed roots", roots)
    if not real.is_file():
        raise bad_input(f"{field} {raw!r} is not an existing regular file", field=field)
    return real


def check_open_directory(fd: int, expected: Path, roots: Sequence[Path], field: str, raw: str) -> None:
    """Refuse when the directory opened as ``fd`` is not ``expected`` inside the roots any more.

    Closes the window between resolving the path and opening it: a component swapped for a
    symlink in between makes the opened directory differ from the resolved one. Linux names the
    opened directory in ``/proc/self/fd``; elsewhere the device and inode are compared.
    """
    proc = Path(f"/proc/self/fd/{fd}")
    if proc.exists():
        opened = Path(os.readlink(proc))
        if opened == expected and _within(opened, roots):
            return
    else:
        st = os.fstat(fd)
        try:
            current = os.stat(expected)
        except OSError:
            current = None
        if current is not None and (st.st_dev, st.st_ino) == (current.st_dev, current.st_ino):
            return
    raise _refuse(field, raw, f"directory {str(expected)!r} changed while it was being opened", roots)
