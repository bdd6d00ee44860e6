"""Stopping the process of an exec when its step is cancelled.

Closing the exec's connection (or killing a ``docker exec`` client) leaves the process running in
the container: the Engine API has no call to stop an exec. Its process is found instead: the
exec's inspect answer names its PID on the Docker host, which is checked to be in the container's
cgroup (so a PID from another PID namespace, or one reused meanwhile, is never signalled). Runc
starts every exec'd process as its own session and process-group leader, so the whole group gets
SIGTERM, then SIGKILL after a grace period. When the agent may not signal it (an agent user in the
``docker`` group, root-owned container processes), the signal is sent from inside the container
instead, by a second exec running the shell's ``kill`` as root on the same process group.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from .capture import Logger
from .engine import Engine, EngineError, path
from .errors import DockerUnavailable

KILL_GRACE = 5.0
START_WAIT = 5.0
POLL = 0.1


async def exec_state(engine: Engine, exec_id: str) -> dict[str, Any]:
    """The exec's inspect answer (``Running``, ``Pid``, ``ExitCode``)."""
    return await engine.call("GET", path("/exec/{}/json", exec_id)) or {}


async def wait_exec(engine: Engine, exec_id: str, *, started: bool, timeout: float) -> dict[str, Any]:
    """Poll until the exec has started (``started=True``) or ended; its last state either way."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        state = await exec_state(engine, exec_id)
        ended = not state.get("Running") and state.get("ExitCode") is not None
        if ended or (started and state.get("Running")) or loop.time() >= deadline:
            return state
        await asyncio.sleep(POLL)


def in_container(pid: int, container_id: str) -> bool:
    """Whether host process ``pid`` is visible here and belongs to the container's cgroup."""
    try:
        return container_id in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def namespaced_pgid(pid: int) -> int | None:
    """The process group of host process ``pid`` as the container sees it (``NSpgid``)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpgid:"):
                return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


async def signal_in_container(engine: Engine, container_id: str, pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to process group ``pgid`` of the container from inside it (``sh -c kill``, as root)."""
    created = await engine.call(
        "POST",
        path("/containers/{}/exec", container_id),
        body={
            "Cmd": ["sh", "-c", 'kill -s "$1" -- "-$2"', "sh", sig.name.removeprefix("SIG"), str(pgid)],
            "User": "0",
            "AttachStdout": True,
            "AttachStderr": True,
        },
    )
    async with engine.stream("POST", path("/exec/{}/start", str(created["Id"])), body={"Detach": False}) as response:
        await response.aread()


async def stop_exec(engine: Engine, exec_id: str, container_id: str, log: Logger, grace: float = KILL_GRACE) -> None:
    """Stop the exec's process group: SIGTERM, then SIGKILL after ``grace`` seconds.

    Never raises: it runs while a cancellation is propagating, and whatever went wrong is logged.
    """
    try:
        state = await wait_exec(engine, exec_id, started=True, timeout=START_WAIT)
        if not state.get("Running"):
            return
        pid = int(state.get("Pid") or 0)
        if not in_container(pid, container_id):
            log.error(
                "cannot stop the command (host PID %d) in container %s: the agent does not see the Docker "
                "host's processes; it may still be running",
                pid,
                container_id[:12],
            )
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            await _signal_group(engine, pid, container_id, sig, log)
            state = await wait_exec(engine, exec_id, started=False, timeout=grace)
            if not state.get("Running"):
                log.info("stopped the command in container %s (%s)", container_id[:12], sig.name)
                return
        log.error("the command (host PID %d) in container %s did not stop", pid, container_id[:12])
    except (EngineError, DockerUnavailable, OSError) as err:
        log.error("could not stop the command in container %s: %s", container_id[:12], err)


async def _signal_group(engine: Engine, pid: int, container_id: str, sig: signal.Signals, log: Logger) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:  # not a group leader (runc makes it one; a runtime might not)
            os.kill(pid, sig)
        return
    except ProcessLookupError:
        return  # ended meanwhile
    except PermissionError:
        pass
    pgid = namespaced_pgid(pid)
    if pgid is None:
        return  # ended meanwhile
    log.info("agent may not signal PID %d; sending %s from inside container %s", pid, sig.name, container_id[:12])
    await signal_in_container(engine, container_id, pgid, sig)
