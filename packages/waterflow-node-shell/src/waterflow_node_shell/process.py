"""Running one command as a process group: live log lines, capped capture, group-wide cancellation."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

# Lines longer than this are logged in pieces, so output without newlines cannot grow memory.
MAX_LOG_LINE = 16 * 1024
READ_CHUNK = 64 * 1024


class ProcessStartError(OSError):
    """The process could not be started (missing or non-executable program, bad format, ...)."""

    def __init__(self, program: str, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.program = program
        self.filename = cause.filename  # the working directory when entering it failed


@dataclass(frozen=True)
class ProcessResult:
    """How a process ended and the tail of what it wrote."""

    exit_code: int
    signal: int | None
    stdout: str
    stderr: str
    truncated: bool


class _Capture:
    """Logs one pipe line by line as it arrives and keeps its last ``cap`` bytes."""

    def __init__(
        self,
        stream: str,
        cap: int,
        log: logging.Logger | logging.LoggerAdapter[Any],
        heartbeat: Callable[..., None],
    ) -> None:
        self.stream = stream
        self.cap = cap
        self.log = log
        self.heartbeat = heartbeat
        self.kept = bytearray()
        self.truncated = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    async def pump(self, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(READ_CHUNK):
            self._keep(chunk)
            self._lines(self._decoder.decode(chunk))
            self.heartbeat()
        self._lines(self._decoder.decode(b"", final=True))
        if self._partial:
            self._emit(self._partial)
            self._partial = ""

    def text(self) -> str:
        data = bytes(self.kept)
        if self.truncated:  # the cut may have split a UTF-8 sequence: drop its continuation bytes
            data = data.lstrip(bytes(range(0x80, 0xC0)))
        return data.decode("utf-8", errors="replace")

    def _keep(self, chunk: bytes) -> None:
        self.kept += chunk
        # Trim in batches (at 2x the cap) so a chatty process does not cost a copy per chunk.
        if len(self.kept) > 2 * self.cap or (self.cap == 0 and self.kept):
            del self.kept[: len(self.kept) - self.cap]
            self.truncated = True

    def finish(self) -> None:
        if len(self.kept) > self.cap:
            del self.kept[: len(self.kept) - self.cap]
            self.truncated = True

    def _lines(self, text: str) -> None:
        if not text:
            return
        pieces = (self._partial + text).split("\n")
        self._partial = pieces.pop()
        for line in pieces:
            self._emit(line.removesuffix("\r"))
        while len(self._partial) > MAX_LOG_LINE:
            self._emit(self._partial[:MAX_LOG_LINE])
            self._partial = self._partial[MAX_LOG_LINE:]

    def _emit(self, line: str) -> None:
        self.log.info("%s", line, extra={"stream": self.stream})


async def run_process(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str],
    log: logging.Logger | logging.LoggerAdapter[Any],
    heartbeat: Callable[..., None] = lambda *a: None,
    cap: int = 64 * 1024,
    stdin: IO[bytes] | None = None,
    kill_grace: float = 5.0,
    drain_timeout: float = 2.0,
) -> ProcessResult:
    """Run ``argv`` in its own process group and wait for it.

    stdout/stderr lines go to ``log`` (``extra={"stream": ...}``) as they come; the last ``cap``
    bytes of each are returned. ``stdin`` (an open file) is the process's standard input, else
    ``/dev/null``. A process that cannot be started raises :class:`ProcessStartError`. If the
    awaiting task is cancelled (or anything else interrupts the wait), the whole group gets
    SIGTERM, then SIGKILL after ``kill_grace`` seconds, and the exception propagates.
    Background processes the command leaves behind on a normal exit are not killed (an ops step
    may legitimately start a daemon); reading stops ``drain_timeout`` seconds after the command
    exits if they keep the pipes open.
    """
    # Our own pipes, not asyncio's: asyncio's Process.wait() also waits for its pipes to close,
    # which a detached background child can postpone forever.
    loop = asyncio.get_running_loop()
    out = _Capture("stdout", cap, log, heartbeat)
    err = _Capture("stderr", cap, log, heartbeat)
    (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
    transports: list[asyncio.BaseTransport] = []
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL if stdin is None else stdin,
            stdout=out_w,
            stderr=err_w,
            start_new_session=True,  # own session and process group: one killpg reaches every descendant
        )
    except BaseException as exc:
        os.close(out_r)
        os.close(err_r)
        if isinstance(exc, OSError):
            raise ProcessStartError(argv[0], exc) from exc
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    files = [os.fdopen(out_r, "rb", buffering=0), os.fdopen(err_r, "rb", buffering=0)]
    pumps: list[asyncio.Task[None]] = []
    try:
        for capture, file in zip((out, err), files, strict=True):
            reader = asyncio.StreamReader(loop=loop)
            transport, _ = await loop.connect_read_pipe(
                functools.partial(asyncio.StreamReaderProtocol, reader, loop=loop), file
            )
            transports.append(transport)
            pumps.append(asyncio.create_task(capture.pump(reader)))
        returncode = await proc.wait()
        # A background child may still hold the pipes: read what comes for a moment, then stop.
        _, pending = await asyncio.wait(pumps, timeout=drain_timeout)
        for task in pending:
            task.cancel()
        for task in pumps:
            if task not in pending and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    except BaseException:
        await _kill_group(proc, kill_grace)
        for task in pumps:
            task.cancel()
        raise
    finally:
        for pipe in transports:
            pipe.close()
        for file in files:  # no-op for those a transport closed already
            file.close()
    out.finish()
    err.finish()
    sig = -returncode if returncode < 0 else None
    return ProcessResult(
        exit_code=128 + sig if sig else returncode,
        signal=sig,
        stdout=out.text(),
        stderr=err.text(),
        truncated=out.truncated or err.truncated,
    )


async def _kill_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    try:
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), grace)
    finally:
        # Unconditionally, even if we are cancelled again while waiting: whatever ignored
        # SIGTERM (or outlived the shell) must not survive the step.
        _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
