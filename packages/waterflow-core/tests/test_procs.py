"""waterflow_core.procs: step tokens reach every descendant, and only marked processes are killed.

Real processes throughout; each one a test starts is killed by pid at the end, whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from waterflow_core.procs import (
    TOKEN_ENV,
    Ledger,
    find_marked,
    kill_marked,
    marked_environment,
    marking,
    new_token,
    sentinel_argv,
    signal_marked,
)

pytestmark = pytest.mark.unit

def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def wait_until(probe: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``probe`` until it holds (``timeout`` is a liveness bound)."""
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "not true in time"
        time.sleep(0.02)


class Processes:
    """Processes a test starts, and pids it learns of; all killed at the end of the test."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        self.pids: list[int] = []

    def spawn(
        self, argv: list[str], token: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` with ``token`` (and ``env``) added to our environment."""
        environment = {**os.environ, **(env or {})}
        if token is not None:
            environment[TOKEN_ENV] = token
        proc = subprocess.Popen(argv, env=environment)
        self.started.append(proc)
        return proc

    def kill_all(self) -> None:
        for pid in self.pids:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        for proc in self.started:
            proc.kill()
            proc.wait()


@pytest.fixture
def procs() -> Iterator[Processes]:
    started = Processes()
    yield started
    started.kill_all()


def test_marking_adds_the_token_inside_the_block_only() -> None:
    assert marked_environment({"A": "1"}) == {"A": "1"}
    assert marked_environment(None) is None
    token = new_token()
    with marking(token):
        # The step cannot choose its own token.
        assert marked_environment({"A": "1", TOKEN_ENV: "chosen"}) == {"A": "1", TOKEN_ENV: token}
        inherited = marked_environment(None)
        assert inherited is not None and inherited[TOKEN_ENV] == token and inherited["PATH"] == os.environ["PATH"]
    assert marked_environment(None) is None
    with pytest.raises(ValueError, match="not a step token"), marking("../etc"):
        pass


async def test_each_task_marks_with_its_own_token() -> None:
    async def step(token: str) -> str | None:
        with marking(token):
            await asyncio.sleep(0.01)  # both tasks are inside their blocks at once
            env = marked_environment({})
            return None if env is None else env[TOKEN_ENV]

    first, second = new_token(), new_token()
    assert list(await asyncio.gather(step(first), step(second))) == [first, second]


def test_kill_reaches_setsid_and_orphaned_descendants_and_nothing_else(procs: Processes, tmp_path: Path) -> None:
    token = new_token()
    pidfile = tmp_path / "pids"
    script = (
        'sleep 1000 & echo $! >> "$0"; '  # a child in the shell's group
        'setsid sleep 1000 & echo $! >> "$0"; '  # a grandchild in a session of its own
        '( setsid sleep 1000 & echo $! >> "$0" ); '  # orphaned at once: a daemon's double fork
        "wait"
    )
    shell = procs.spawn(["bash", "-c", script, str(pidfile)], token)
    unmarked = procs.spawn(["sleep", "1000"])
    other_step = procs.spawn(["sleep", "1000"], new_token())
    # The token's text, but not as the variable itself: not a process of the step.
    lookalike = procs.spawn(["sleep", "1000"], env={"X_" + TOKEN_ENV: token, "NOTE": f"{TOKEN_ENV}={token}"})
    wait_until(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 3)
    descendants = [int(pid) for pid in pidfile.read_text().split()]
    procs.pids.extend(descendants)

    assert sorted(find_marked([token])) == sorted([shell.pid, *descendants])
    assert kill_marked([token]) == 4
    assert shell.wait(10) == -signal.SIGKILL
    wait_until(lambda: not any(running(pid) for pid in descendants))
    assert find_marked([token]) == []
    assert all(proc.poll() is None for proc in (unmarked, other_step, lookalike))


def test_signal_marked_sends_one_signal(procs: Processes) -> None:
    token = new_token()
    proc = procs.spawn(["sleep", "1000"], token)
    wait_until(lambda: find_marked([token]) == [proc.pid])
    assert signal_marked([token], signal.SIGTERM) == 1
    assert proc.wait(10) == -signal.SIGTERM


def test_what_is_not_a_token_matches_nothing(procs: Processes) -> None:
    proc = procs.spawn(["sleep", "1000"], "not-a-token")
    wait_until(lambda: running(proc.pid))
    assert find_marked(["not-a-token", ""]) == []
    assert kill_marked(["not-a-token"]) == 0
    assert proc.poll() is None


def test_ledger_keeps_tokens_as_files(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "state" / "running")
    assert ledger.tokens() == []
    first, second = new_token(), new_token()
    ledger.add(first)
    ledger.add(second)
    ledger.add(first)
    (ledger.directory / "README").write_text("not a token")
    assert ledger.tokens() == sorted([first, second])
    assert ledger.directory.stat().st_mode & 0o777 == 0o700
    ledger.discard(first)
    ledger.discard(first)
    assert ledger.tokens() == [second]
    ledger.clear()
    assert ledger.tokens() == []
    with pytest.raises(ValueError, match="not a step token"):
        ledger.add("../../etc/passwd")
    # A link planted where a token file goes is not followed.
    planted = new_token()
    (ledger.directory / planted).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        ledger.add(planted)
    assert not (tmp_path / "elsewhere").exists()


def test_sentinel_kills_the_ledgers_steps_when_its_pipe_closes(procs: Processes, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "running")
    running_step, ended_step = new_token(), new_token()
    ledger.add(running_step)
    victim = procs.spawn(["sleep", "1000"], running_step)
    daemon = procs.spawn(["sleep", "1000"], ended_step)  # its step ended: no longer in the ledger
    # As the agent starts it: an empty environment, standard library only.
    sentinel = subprocess.Popen(sentinel_argv(ledger.directory), stdin=subprocess.PIPE, stderr=subprocess.PIPE, env={})
    try:
        assert "-I" in sentinel_argv(ledger.directory)
        wait_until(lambda: running(victim.pid))
        assert sentinel.poll() is None and victim.poll() is None
        assert sentinel.stdin is not None
        sentinel.stdin.close()  # what the agent's death does
        assert sentinel.wait(30) == 0
    finally:
        sentinel.kill()
        sentinel.wait()
    assert victim.wait(10) == -signal.SIGKILL
    assert daemon.poll() is None
    assert sentinel.stderr is not None
    assert b"killed 1 process(es) of 1 running step(s)" in sentinel.stderr.read()
