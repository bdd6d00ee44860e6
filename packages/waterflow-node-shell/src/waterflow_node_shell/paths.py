"""Where a step runs and which script file it runs, checked before anything starts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from temporalio.exceptions import ApplicationError

from waterflow_core.errors import ErrorCode

from .errors import bad_input


def resolve_cwd(workdir: Path, cwd: str | None) -> Path:
    """The step's working directory: ``cwd`` resolved against the agent's step directory."""
    try:
        path = Path(workdir) if cwd is None else Path(workdir) / Path(cwd).expanduser()
    except RuntimeError as exc:  # `~user` of an unknown user
        raise bad_input(f"cwd {cwd!r}: {exc}") from None
    if not path.is_dir():
        raise ApplicationError(f"working directory {str(path)!r} does not exist", type=ErrorCode.STEP_FAILED)
    return path.absolute()


def script_file(cwd: Path, path: str, *, executable: bool) -> Path:
    """The absolute path of the script ``path`` (relative to ``cwd``), checked to be runnable.

    The result is absolute, so it can never be read as an option by an interpreter
    (``path: -c...`` becomes ``<cwd>/-c...``). ``executable`` also requires the execute permission
    (the file is run directly, its ``#!`` line naming the interpreter).
    """
    try:
        file = (cwd / Path(path).expanduser()).absolute()
    except RuntimeError as exc:  # `~user` of an unknown user
        raise bad_input(f"script path {path!r}: {exc}") from None
    shown = repr(path) if str(file) == path else f"{path!r} ({file})"
    try:
        info = file.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise bad_input(f"script path {shown} does not exist on this agent") from None
    except (OSError, ValueError) as exc:  # permission denied on a parent directory, NUL in the path
        raise bad_input(f"script path {shown} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise bad_input(f"script path {shown} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise bad_input(f"script path {shown} is not a regular file")
    if not os.access(file, os.R_OK):
        raise bad_input(f"script path {shown} is not readable by the agent's user")
    if executable and not os.access(file, os.X_OK):
        raise bad_input(
            f"script path {shown} is not executable: make it executable (chmod +x, with a #! line) "
            "or name its interpreter (interpreter: bash)"
        )
    return file
