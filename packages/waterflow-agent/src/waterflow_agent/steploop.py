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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from waterflow_core.procs import marked_environment

from .runas import StepUser, current_step_user


class StepLoop(asyncio.SelectorEventLoop):
    """An event loop whose subprocesses are marked as the running step's, and run as ``step_user``."""

    def __init__(self, step_user: StepUser | None = None) -> None:
        super().__init__()
        self.step_user = step_user

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
