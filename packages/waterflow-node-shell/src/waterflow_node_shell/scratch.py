"""The scratch directory of one exec step: its outputs file, script file and stdin file.

Those files may hold secrets (a rendered script, stdin), so only the step's processes may reach
them. Without a step user the directory is the agent's (mode 0700) and so are the files (0600).
With ``ctx.step_user`` (the agent's ``--run-as``) the processes are that user's: the directory
stays the agent's, its group the user's primary group and its mode 0710, so the user reaches the
files by name but can neither list the directory nor add, rename or replace anything in it; the
files are the user's (0600). The outputs file is read back without following a symbolic link and
only if it is a regular file, so a step cannot make the agent read another file in its place.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from waterflow_core.node import StepUser


class ScratchFileError(ValueError):
    """A scratch file the step wrote cannot be used (not a regular file, too large)."""


class Scratch:
    """A private temporary directory for one step (see the module docstring); a context manager."""

    def __init__(self, user: StepUser | None) -> None:
        self.user = user
        self.path = Path(tempfile.mkdtemp(prefix="waterflow-step-"))  # 0700
        if user is not None:
            os.chown(self.path, -1, user.gid)
            self.path.chmod(0o710)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def file(self, name: str, data: bytes = b"") -> Path:
        """Create the file ``name`` holding ``data``, private to the step's processes."""
        path = self.path / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            if self.user is not None:
                os.fchown(fd, self.user.uid, self.user.gid)
            with os.fdopen(fd, "wb", closefd=False) as out:
                out.write(data)
        finally:
            os.close(fd)
        return path

    def read(self, name: str, limit: int) -> bytes:
        """The content of the file ``name`` the step wrote, at most ``limit`` bytes."""
        # O_NONBLOCK: opening a FIFO put in its place must not hang the agent.
        fd = os.open(self.path / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ScratchFileError("not a regular file")
            if info.st_size > limit:
                raise ScratchFileError(f"larger than {limit} bytes")
            data = file.read(limit + 1)
        if len(data) > limit:
            raise ScratchFileError(f"larger than {limit} bytes")
        return data
