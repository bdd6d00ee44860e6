"""The child processes Waterflow runs itself: Temporal, agents, API servers.

Used by :class:`~waterflow_testing.devserver.DevServer`, the local agent of ``waterflow dev`` and
the test fixtures, so every such child is spawned, logged and stopped the same way: in its own
session (a Ctrl-C at the terminal reaches the parent only, which stops its children in order),
stdin closed, stdout and stderr appended to a log file, and on Linux it dies with its parent.

Light on purpose (standard library only): pytest loads it with the fixtures in every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "free_port",
    "parent_death_preexec",
    "read_log",
    "spawn_logged",
    "stop_process",
    "stop_process_blocking",
    "wait_for_log_line",
]

StrPath = str | os.PathLike[str]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host`` (the caller retries if it is taken later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def parent_death_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux SIGTERM the child when we die without stopping it.

    Without it a crashed test run or a SIGKILLed ``waterflow dev`` leaves Temporal (or a test's
    agent) orphaned, holding its port. ``prctl`` is resolved here, in the parent, so the forked
    child only makes one foreign call before ``exec``. Linux sends the signal when the spawning
    *thread* exits, so spawn from a thread that lives as long as the child (the main thread, or
    the private thread of :meth:`DevServer.start_blocking`).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))

    return preexec


def spawn_logged(
    command: Sequence[str],
    log_file: StrPath,
    *,
    env: Mapping[str, str] | None = None,
    cwd: StrPath | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``command`` in its own session, its output appended to ``log_file``.

    Returns the process and the offset in ``log_file`` where its output starts (for
    :func:`read_log`). ``env`` replaces the environment when given; ``None`` inherits ours.
    """
    with Path(log_file).open("ab") as out:
        offset = out.tell()
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,
            # Only prctl (async-signal-safe) runs between fork and exec.
            preexec_fn=parent_death_preexec(),  # noqa: PLW1509
        )
    return process, offset


def read_log(log_file: StrPath, offset: int = 0) -> str:
    """What was written to ``log_file`` from byte ``offset`` on (``""`` when it cannot be read)."""
    try:
        with Path(log_file).open("rb") as log:
            log.seek(offset)
            data = log.read()
    except OSError:
        return ""
    return data.decode(errors="replace")


def wait_for_log_line(log_file: StrPath, pattern: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Block until ``pattern`` (a regex) appears in ``log_file``; raise with the log's end when the
    process exits first or ``timeout`` seconds pass."""
    import re

    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while not regex.search(read_log(log_file)):
        if process.poll() is not None:
            raise RuntimeError(f"process exited early:\n{read_log(log_file)[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{pattern!r} not seen within {timeout:.0f}s:\n{read_log(log_file)[-3000:]}")
        time.sleep(0.1)


async def stop_process(
    process: subprocess.Popen[bytes], grace: float, *, on_kill: Callable[[], object] | None = None
) -> int:
    """SIGTERM, then SIGKILL when still running after ``grace`` seconds; always reaps.

    Polls without blocking the event loop. ``on_kill`` is called just before the SIGKILL.
    Returns the exit status.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        deadline = time.monotonic() + grace
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if process.poll() is None:
            if on_kill is not None:
                on_kill()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    return await asyncio.to_thread(process.wait)


def stop_process_blocking(process: subprocess.Popen[bytes], grace: float) -> int:
    """:func:`stop_process` for synchronous callers: blocks until the process has exited."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
