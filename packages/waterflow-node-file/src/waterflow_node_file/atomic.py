"""Atomic writes: a temporary file beside the destination, fsync, then rename.

Every operation goes through a descriptor of the destination's directory, opened once and
checked against the allowed roots, so swapping a path component for a symlink after the check
cannot redirect the write. Until :meth:`AtomicFile.commit` renames it into place, the temporary
file is the only thing written; :meth:`AtomicFile.discard` removes it, so a failed, cancelled or
rejected transfer leaves nothing behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import bad_input, failed
from .roots import Destination, check_open_directory

TEMP_SUFFIX = ".waterflow-tmp"
READ_CHUNK = 1024 * 1024
_DEFAULT_UMASK = 0o022


@dataclass(frozen=True)
class Existing:
    """What the destination holds before the transfer."""

    sha256: str
    size: int
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True)
class Ownership:
    """``owner`` resolved to ids; -1 leaves that id unchanged (as ``os.chown`` reads it)."""

    uid: int = -1
    gid: int = -1


def process_umask() -> int:
    """The agent's umask, read without changing it (``os.umask`` would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _DEFAULT_UMASK


class AtomicFile:
    """A temporary file in the destination's directory that becomes the destination on commit.

    Blocking methods; the node calls the slow ones through :func:`~.blocking.blocking`.
    """

    def __init__(self, destination: Destination, roots: Sequence[Path], field: str, raw: str, max_bytes: int | None):
        self.destination = destination
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        self._fd: int | None = None
        self._temp: str | None = None
        self._dir_fd = os.open(destination.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            check_open_directory(self._dir_fd, destination.directory, roots, field, raw)
        except BaseException:
            os.close(self._dir_fd)
            raise

    @property
    def target(self) -> str:
        """The real path of the destination, for messages."""
        return str(self.destination.path)

    # -- the destination as it is -------------------------------------------------------------

    def existing(self) -> Existing | None:
        """Hash and describe the current destination file, or ``None`` when there is none."""
        try:
            fd = os.open(self.destination.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._dir_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink appeared after the destination was resolved
                raise bad_input(f"destination {self.target!r} is a symlink", field="destination") from None
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise bad_input(f"destination {self.target!r} is not a regular file", field="destination")
            digest = hashlib.sha256()
            size = 0
            while chunk := os.read(fd, READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
            return Existing(digest.hexdigest(), size, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
        finally:
            os.close(fd)

    def update_metadata(self, existing: Existing, mode: int | None, owner: Ownership) -> bool:
        """Give the unchanged destination ``mode`` and ``owner``; whether anything changed."""
        fd = os.open(self.destination.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self._dir_fd)
        try:
            return _apply_metadata(fd, existing, mode, owner)
        finally:
            os.close(fd)

    # -- the new content ----------------------------------------------------------------------

    def open(self) -> None:
        """Create the temporary file (0600, exclusive, never through a symlink)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        for _ in range(100):
            name = f".{self.destination.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
            try:
                self._fd = os.open(name, flags, 0o600, dir_fd=self._dir_fd)
            except FileExistsError:
                continue
            self._temp = name
            return
        raise failed(f"could not create a temporary file in {str(self.destination.directory)!r}", retryable=True)

    def write(self, data: bytes) -> None:
        """Append ``data``, hashing it; refuse to go past ``max_bytes``."""
        assert self._fd is not None, "open() first"
        if self.max_bytes is not None and self.size + len(data) > self.max_bytes:
            raise failed(
                f"more than max-bytes ({self.max_bytes}) bytes; nothing was written to "
                f"{str(self.destination.path)!r}",
                retryable=False,
                max_bytes=self.max_bytes,
            )
        self._hash.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of what was written so far."""
        return self._hash.hexdigest()

    def commit(self, existing: Existing | None, mode: int | None, owner: Ownership) -> None:
        """Set mode and owner, fsync, rename over the destination, fsync the directory.

        Without ``mode`` a replaced file keeps its mode and (where permitted) its owner, as
        Ansible's atomic move does; a new file gets ``0666 & ~umask`` like any created file.
        """
        assert self._fd is not None and self._temp is not None, "open() first"
        if mode is None:
            mode = existing.mode if existing is not None else 0o666 & ~process_umask()
        if owner.uid != -1 or owner.gid != -1:
            os.fchown(self._fd, owner.uid, owner.gid)
        elif existing is not None and (existing.uid, existing.gid) != (os.geteuid(), os.getegid()):
            try:
                os.fchown(self._fd, existing.uid, existing.gid)
            except PermissionError:
                pass  # only root may give a file away; the file is then the agent user's
        os.fchmod(self._fd, mode)  # after chown, which clears setuid/setgid bits
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        os.rename(self._temp, self.destination.name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        self._temp = None
        os.fsync(self._dir_fd)  # the rename itself survives a crash

    def discard(self) -> None:
        """Remove the temporary file, if any; safe to call twice."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._temp is not None:
            try:
                os.unlink(self._temp, dir_fd=self._dir_fd)
            except FileNotFoundError:
                pass
            self._temp = None

    def close(self) -> None:
        """Discard the temporary file and release the directory; safe to call twice."""
        self.discard()
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1


def _apply_metadata(fd: int, existing: Existing, mode: int | None, owner: Ownership) -> bool:
    changed = False
    uid = existing.uid if owner.uid == -1 else owner.uid
    gid = existing.gid if owner.gid == -1 else owner.gid
    if (uid, gid) != (existing.uid, existing.gid):
        os.fchown(fd, uid, gid)
        os.fchmod(fd, existing.mode if mode is None else mode)  # chown clears setuid/setgid bits
        changed = True
    if mode is not None and mode != existing.mode:
        os.fchmod(fd, mode)
        changed = True
    return changed
