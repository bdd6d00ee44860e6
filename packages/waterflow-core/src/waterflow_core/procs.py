"""Processes of a step that must not outlive it: marking, finding and killing them.

A process started for a step carries the step's *token* in its environment
(``WATERFLOW_STEP_TOKEN=<32 hex digits>``), and so does everything it starts, whether it stays in
the step's process group or leaves it (``setsid``, a daemon's double fork). A :class:`Ledger`
lists the tokens of the steps running now; whoever reads it finds their processes through
``/proc/<pid>/environ`` and kills them:

- the agent, when a step is cancelled (after the node's own cleanup), and at start-up, for what
  the steps of its previous life left running;
- the *sentinel*, a small child of the agent that waits for the agent's end and then kills the
  processes of the steps still in the ledger. It reads a pipe that only the agent holds open: end
  of file comes when the agent exits, however it exits (SIGKILL included), unlike
  ``PR_SET_PDEATHSIG``, which follows the thread that started the child.

Nodes need no code for this: the agent's event loop adds the token of the step being executed
(:func:`marking`) to every process started through it (:func:`marked_environment`); a node that
starts processes another way (``subprocess`` in a thread) passes its environment through
:func:`marked_environment` itself.

A process is signalled only after its environment, read again through a pidfd opened first, shows
the token, so a recycled pid is never signalled. Standard library only, and no asyncio: the
sentinel runs this file as a script (``python -I -S``), which costs a few MB and imports nothing
from site-packages.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import sys
import time
from collections.abc import Collection, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path

__all__ = [
    "TOKEN_ENV",
    "Ledger",
    "find_marked",
    "kill_marked",
    "marked_environment",
    "marking",
    "new_token",
    "sentinel_argv",
    "signal_marked",
]

TOKEN_ENV = "WATERFLOW_STEP_TOKEN"  # noqa: S105 - a variable name, not a secret
_TOKEN_RE = re.compile(r"[0-9a-f]{32}")
_MARK = TOKEN_ENV.encode() + b"="
_current: ContextVar[str | None] = ContextVar("waterflow_step_token", default=None)

#: SIGKILL passes of :func:`kill_marked` (a pass finds the children forked since the previous one).
KILL_PASSES = 50
_PASS_PAUSE = 0.02


def new_token() -> str:
    """A fresh step token."""
    return secrets.token_hex(16)


@contextlib.contextmanager
def marking(token: str) -> Iterator[None]:
    """Within the block (this task's or thread's context), processes started are marked with ``token``."""
    if not _TOKEN_RE.fullmatch(token):
        raise ValueError(f"not a step token: {token!r}")
    previous = _current.set(token)
    try:
        yield
    finally:
        _current.reset(previous)


def marked_environment(env: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """``env`` (``None``: this process's environment) plus the token of the step being run.

    Outside :func:`marking`, ``env`` is returned as it is. The token replaces any value ``env``
    had for it: a step cannot choose its own.
    """
    token = _current.get()
    if token is None:
        return env
    return {**(os.environ if env is None else env), TOKEN_ENV: token}


def find_marked(tokens: Collection[str]) -> list[int]:
    """The pids of the live processes carrying one of ``tokens`` (empty where there is no ``/proc``)."""
    wanted = _entries(tokens)
    return [pid for pid in _pids() if _carries(pid, wanted)] if wanted else []


def signal_marked(tokens: Collection[str], sig: int) -> int:
    """Send ``sig`` once to every process carrying one of ``tokens``; returns how many got it."""
    wanted = _entries(tokens)
    return sum(_signal_if_marked(pid, wanted, sig) for pid in _pids()) if wanted else 0


def kill_marked(tokens: Collection[str], passes: int = KILL_PASSES) -> int:
    """SIGKILL every process carrying one of ``tokens``, again until none is left; returns how many.

    Repeated because a process may fork between the scan and its death; the child carries the
    token too and is found by the next pass. Processes that cannot die (uninterruptible sleep)
    end the loop after ``passes``.
    """
    killed: set[int] = set()
    wanted = _entries(tokens)
    for _ in range(passes if wanted else 0):
        hit = [pid for pid in _pids() if _signal_if_marked(pid, wanted, signal.SIGKILL)]
        if not hit:
            break
        killed.update(hit)
        time.sleep(_PASS_PAUSE)
    return len(killed)


class Ledger:
    """The tokens of the steps running now: one empty file per token in ``directory`` (mode 0700)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def add(self, token: str) -> None:
        """Record ``token`` (before the step starts any process)."""
        if not _TOKEN_RE.fullmatch(token):
            raise ValueError(f"not a step token: {token!r}")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.directory / token, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))

    def discard(self, token: str) -> None:
        """Forget ``token`` (the step ended; what it left running on purpose stays)."""
        with contextlib.suppress(FileNotFoundError):
            (self.directory / token).unlink()

    def tokens(self) -> list[str]:
        """The recorded tokens; names that are not tokens are ignored."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if _TOKEN_RE.fullmatch(name))

    def clear(self) -> None:
        """Forget every token."""
        for token in self.tokens():
            self.discard(token)


def sentinel_argv(ledger: Path) -> list[str]:
    """The command of a sentinel for ``ledger``; its standard input must be a pipe only the agent holds."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), "sentinel", os.fspath(ledger)]


def _sentinel(ledger: Path) -> int:
    while os.read(0, 4096):  # end of file: every holder of the pipe's other end is gone
        pass
    tokens = Ledger(ledger).tokens()
    if tokens:
        killed = kill_marked(tokens)
        print(
            f"waterflow sentinel: the agent is gone; killed {killed} process(es) of {len(tokens)} running step(s)",
            file=sys.stderr,
            flush=True,
        )
    return 0


def _entries(tokens: Collection[str]) -> frozenset[bytes]:
    return frozenset(_MARK + token.encode() for token in tokens if _TOKEN_RE.fullmatch(token))


def _pids() -> list[int]:
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    me = os.getpid()
    return [pid for pid in (int(name) for name in names if name.isdigit()) if pid != me]


def _carries(pid: int, wanted: frozenset[bytes]) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as file:
            data = file.read()
    except OSError:  # gone, or not ours to read
        return False
    # A zombie's environment reads empty: it is dead already.
    return _MARK in data and not wanted.isdisjoint(data.split(b"\0"))


def _signal_if_marked(pid: int, wanted: frozenset[bytes], sig: int) -> bool:
    if not _carries(pid, wanted):
        return False
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):  # no pidfd (before Linux 5.3): the re-check narrows the race
        pidfd = None
    try:
        # From here the pid can no longer be recycled under us: check that it still is the process.
        if not _carries(pid, wanted):
            return False
        if pidfd is None:
            os.kill(pid, sig)
        else:
            signal.pidfd_send_signal(pidfd, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "sentinel":
        sys.exit(f"usage: {sys.argv[0]} sentinel LEDGER_DIRECTORY")
    sys.exit(_sentinel(Path(sys.argv[2])))
