"""Running a command (compose) as its own process group: live log lines, bounded capture, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .capture import Logger, StreamCapture

OUTPUT_CAP = 4 * 1024 * 1024
KILL_GRACE = 5.0
READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Completed:
    """How a command ended and the tail of what it wrote."""

    returncode: int
    stdout: str
    stderr: str


async def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str],
    log: Logger,
    log_stdout: bool = True,
    grace: float = KILL_GRACE,
) -> Completed:
    """Run ``argv`` and wait for it; stderr (and stdout unless ``log_stdout`` is false) go to ``log``.

    When the awaiting task is cancelled (or anything else interrupts the wait) the whole process
    group gets SIGTERM, then SIGKILL after ``grace`` seconds, and the exception propagates.
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # one killpg reaches everything it started
    )
    out = StreamCapture("stdout", OUTPUT_CAP, log if log_stdout else None)
    err = StreamCapture("stderr", OUTPUT_CAP, log)
    try:
        assert process.stdout is not None and process.stderr is not None
        await asyncio.gather(_pump(process.stdout, out), _pump(process.stderr, err))
        returncode = await process.wait()
    except BaseException:
        await _kill_group(process, grace)
        raise
    return Completed(returncode, out.text(), err.text())


async def _pump(reader: asyncio.StreamReader, capture: StreamCapture) -> None:
    while chunk := await reader.read(READ_CHUNK):
        capture.feed(chunk)
    capture.close()


async def _kill_group(process: asyncio.subprocess.Process, grace: float) -> None:
    try:
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), grace)
    finally:
        # Even if cancelled again while waiting: nothing of the command may outlive the step.
        _signal_group(process.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def probe(argv: list[str], timeout: float = 30.0) -> tuple[int, str]:
    """Run a short query (``version``); its exit status and stdout (status 127 if it cannot start)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
    except OSError:
        return 127, ""
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except BaseException as err:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        if isinstance(err, TimeoutError):
            return 124, ""  # a compose that hangs on `version` does not work either
        raise
    return process.returncode or 0, out.decode(errors="replace")
