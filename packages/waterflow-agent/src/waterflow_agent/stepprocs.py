"""Step processes die with their step's cancellation and with the agent (ADR 0025).

The agent's side of :mod:`waterflow_core.procs`: the state directory ``<workdir>/state`` (mode
0700) holds a lock (one agent per workdir) and the ledger of running steps. At start the agent
kills what the steps of its previous life left running, then starts the sentinel; during a step
the ledger holds its token; a cancelled step's marked processes get SIGTERM, then SIGKILL after
a grace period, once the node's own cleanup is done. A step that ends by itself (success or
failure) leaves what it started on purpose running (a daemon): only its token is forgotten.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import IO

from waterflow_core.procs import Ledger, find_marked, kill_marked, sentinel_argv, signal_marked

log = logging.getLogger(__name__)

STATE_DIR = "state"
#: How long a cancelled step's processes get between SIGTERM and SIGKILL (the same as exec's).
STOP_GRACE = 5.0
_POLL = 0.1


class WorkdirInUse(Exception):
    """Another agent runs with this workdir."""


class StepProcesses:
    """The ledger, lock and sentinel of one agent (see the module docstring)."""

    def __init__(self, workdir: Path) -> None:
        self.state = workdir / STATE_DIR
        self.ledger = Ledger(self.state / "running")
        self._lock: IO[str] | None = None
        self._sentinel: subprocess.Popen[bytes] | None = None

    def open(self) -> int:
        """Lock the workdir, kill the leftovers of the previous life, start the sentinel.

        Returns how many leftover processes were killed. Raises :class:`WorkdirInUse` when another
        agent holds the lock: its running steps are in the same ledger.
        """
        self.state.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state.chmod(0o700)
        self._take_lock()
        tokens = self.ledger.tokens()
        killed = kill_marked(tokens) if tokens else 0
        if killed:
            log.warning(
                "killed %d process(es) left running by %d step(s) of this agent's previous run", killed, len(tokens)
            )
        self.ledger.clear()
        self._start_sentinel()
        return killed

    def close(self) -> None:
        """Stop the sentinel (it kills what is still in the ledger) and release the lock."""
        if self._sentinel is not None:
            assert self._sentinel.stdin is not None
            self._sentinel.stdin.close()
            try:
                self._sentinel.wait(30)
            except subprocess.TimeoutExpired:
                log.warning("the process sentinel (pid %d) did not exit", self._sentinel.pid)
            self._sentinel = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @property
    def sentinel_pid(self) -> int | None:
        """The sentinel's pid, ``None`` when it is not running."""
        sentinel = self._sentinel
        return None if sentinel is None or sentinel.poll() is not None else sentinel.pid

    def begin(self, token: str) -> None:
        """A step with ``token`` starts."""
        if self._sentinel is not None and self._sentinel.poll() is not None:
            log.warning("the process sentinel exited (status %s); starting a new one", self._sentinel.returncode)
            self._start_sentinel()
        self.ledger.add(token)

    def end(self, token: str) -> None:
        """The step with ``token`` ended; its processes are no longer killed with the agent."""
        self.ledger.discard(token)

    async def stop(self, token: str, grace: float = STOP_GRACE) -> None:
        """SIGTERM the processes marked with ``token``, SIGKILL them after ``grace`` seconds."""
        tokens = [token]
        loop = asyncio.get_running_loop()
        try:
            if await asyncio.to_thread(signal_marked, tokens, signal.SIGTERM):
                deadline = loop.time() + grace
                while loop.time() < deadline:
                    if not await asyncio.to_thread(find_marked, tokens):
                        break
                    await asyncio.sleep(_POLL)
        finally:
            # Even if cancelled again meanwhile: nothing of the step may outlive it. The thread
            # finishes the job whether or not this task is still there to wait for it.
            killed = await asyncio.shield(asyncio.to_thread(kill_marked, tokens))
            if killed:
                log.info("killed %d process(es) of a cancelled step that outlived its grace period", killed)

    def _start_sentinel(self) -> None:
        # Not through the event loop: the sentinel must keep the agent's user (root under --run-as)
        # to kill whatever the steps become; its own session keeps a terminal's Ctrl-C off it.
        self._sentinel = subprocess.Popen(
            sentinel_argv(self.ledger.directory),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env={},
            start_new_session=True,
        )
        log.debug("process sentinel: pid %d", self._sentinel.pid)

    def _take_lock(self) -> None:
        lock = (self.state / "lock").open("a+", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            lock.close()
            raise WorkdirInUse(
                f"another agent (pid {holder}) runs with the workdir {self.state.parent}: "
                "give each agent its own --workdir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock
