"""The agent's event loop: every process started through it is a process of the running step.

Nodes start processes through the event loop (``asyncio.create_subprocess_exec`` / ``_shell``),
so the loop is the one place every process-starting node shares: no node has to opt in, and none
can forget. Each such process gets

- the token of the step being executed (:func:`waterflow_core.procs.marked_environment`), by
  which the agent finds and kills it, and whatever it started, when the step is cancelled or the
  agent dies (:mod:`waterflow_agent.stepprocs`);
- with ``--run-as``, the step user's uid, groups and account variables
  (:mod:`waterflow_agent.runas`): the user wins over whatever the node asked for, the point being
  that no step gets more; a working directory the user could not enter is refused with
  ``PermissionError``, as ``Popen`` reports a directory it cannot enter. A step's own
  ``run-as:`` (:func:`~waterflow_agent.runas.running_as`) replaces ``--run-as`` for its processes.

On Python 3.11 the loop also learns of its processes' exits through a pidfd rather than a
``waitpid`` thread per process (ADR 0043).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

from waterflow_core.procs import marked_environment

from .runas import StepUser, current_step_user


class StepLoop(asyncio.SelectorEventLoop):
    """An event loop whose subprocesses are marked as the running step's, and run as ``step_user``."""

    def __init__(self, step_user: StepUser | None = None) -> None:
        super().__init__()
        self.step_user = step_user
        self._replaced_watcher = _watch_children_with_pidfd(self)

    def close(self) -> None:
        """Close the loop and give the process back the child watcher it had before."""
        try:
            super().close()
        finally:
            if self._replaced_watcher is not None:
                asyncio.set_child_watcher(self._replaced_watcher)
                self._replaced_watcher = None

    async def subprocess_exec(
        self, protocol_factory: Callable[[], Any], *args: Any, **kwargs: Any
    ) -> Any:
        """:meth:`asyncio.AbstractEventLoop.subprocess_exec`, as a process of the running step."""
        return await super().subprocess_exec(protocol_factory, *args, **self._for_step(kwargs))

    async def subprocess_shell(
        self, protocol_factory: Callable[[], Any], cmd: Any, **kwargs: Any
    ) -> Any:
        """:meth:`asyncio.AbstractEventLoop.subprocess_shell`, as a process of the running step."""
        return await super().subprocess_shell(protocol_factory, cmd, **self._for_step(kwargs))

    def _for_step(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        env = marked_environment(kwargs.get("env"))
        user = current_step_user() or self.step_user  # a step's own run-as: wins over --run-as
        if user is not None:
            if kwargs.get("cwd") is not None:
                user.check_can_enter(kwargs["cwd"])  # Popen would enter it as root
            return {**kwargs, **user.popen_options(), "env": user.environment(env)}
        return kwargs if env is None else {**kwargs, "env": env}


def loop_factory(step_user: StepUser | None) -> Callable[[], asyncio.AbstractEventLoop]:
    """The ``asyncio.Runner`` loop factory of an agent."""
    return lambda: StepLoop(step_user)


def _watch_children_with_pidfd(loop: asyncio.AbstractEventLoop) -> asyncio.AbstractChildWatcher | None:
    """Learn of step processes' exits through a pidfd in ``loop``, not a thread per process.

    Python 3.11's default child watcher starts a thread per subprocess that blocks in
    ``waitpid`` and hands the exit back to the loop: a thread start and extra wake-ups per
    step, which on a busy machine delay every step's completion (ADR 0043). 3.12 picks the
    pidfd watcher by itself (and deprecates choosing one), so this only acts on 3.11 with Linux
    ≥ 5.3. The watcher is process-wide: returns the one it replaced (``None`` when it did
    nothing), which :meth:`StepLoop.close` puts back.
    """
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return None
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # the kernel or a seccomp policy refuses it: keep the threaded watcher
        return None
    replaced = asyncio.get_child_watcher()
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(loop)  # 3.11's is bound to one loop, and asyncio.Runner does not attach it
    asyncio.set_child_watcher(watcher)
    return replaced
