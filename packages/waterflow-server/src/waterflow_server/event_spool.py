"""An event handler's queue kept on disk as well, so a crash of the server loses no event (ADR 0031).

One directory per server (``--event-spool DIR``), two files per handler: ``<handler>.jsonl``
(every queued event, one JSON line each, appended when the event is queued) and
``<handler>.offset`` (how far the handler got: the byte after the last event it was done with,
delivered or given up). A new server process on the same directory hands the events past the
offset to the handler first. Appends are flushed to the operating system but not synced: they
survive the server process (``kill -9``), not the machine.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["Spool", "SpoolError"]

log = logging.getLogger(__name__)

_OFFSET_WIDTH = 20
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class SpoolError(Exception):
    """The spool cannot be used (another server process holds it, or it cannot be created)."""


class Spool:
    """The on-disk copy of one handler's queue (used under the channel's lock).

    One process at a time: the offset file is locked (``flock``) while the spool is open.
    """

    def __init__(self, directory: Path, name: str) -> None:
        stem = _UNSAFE_NAME.sub("_", name)
        self.path = directory / f"{stem}.jsonl"
        self.offset_path = directory / f"{stem}.offset"
        self._file: Any = None
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._offset_fd: int | None = os.open(self.offset_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"event spool {directory}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._offset_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._offset_fd)
            self._offset_fd = None
            raise SpoolError(f"event spool {self.path} is in use by another server process") from None

    def recover(self) -> list[tuple[Mapping[str, Any], int]]:
        """The events a previous process queued and did not finish, each with its end position.

        The file is rewritten to hold just those (a torn last line, from a crash mid-write, is
        dropped), and opened for appending.
        """
        pending: list[Mapping[str, Any]] = []
        try:
            done = int(self.offset_path.read_text().strip() or 0)
        except (OSError, ValueError):
            done = 0
        try:
            with self.path.open("rb") as file:
                file.seek(done)
                for line in file:
                    if not line.endswith(b"\n"):
                        log.warning("event spool %s: dropping an incomplete last line", self.path)
                        break
                    try:
                        pending.append(json.loads(line))
                    except ValueError:
                        log.warning("event spool %s: dropping a line that is not JSON", self.path)
        except FileNotFoundError:
            pass
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        recovered: list[tuple[Mapping[str, Any], int]] = []
        with os.fdopen(fd, "wb") as file:
            for event in pending:
                file.write(_line(event))
                recovered.append((event, file.tell()))
        os.replace(temporary, self.path)
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for the process's life
        self._write_offset(0)
        return recovered

    def append(self, event: Mapping[str, Any]) -> int:
        """Write ``event``; returns the position after it (what :meth:`done` is called with)."""
        self._file.write(_line(event))
        self._file.flush()
        return int(self._file.tell())

    def done(self, end: int, *, empty: bool) -> None:
        """The events up to ``end`` are finished with; ``empty``: nothing else is queued (truncate)."""
        if empty:
            self._file.truncate(0)
            self._file.seek(0)
            end = 0
        self._write_offset(end)

    def close(self) -> None:
        """Close the files and release the lock (what is left goes to the handler at the next start)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._offset_fd is not None:
            os.close(self._offset_fd)
            self._offset_fd = None

    def _write_offset(self, value: int) -> None:
        assert self._offset_fd is not None
        os.pwrite(self._offset_fd, str(value).rjust(_OFFSET_WIDTH).encode(), 0)


def _line(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str).encode() + b"\n"
