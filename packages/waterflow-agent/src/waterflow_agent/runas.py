"""``--run-as USER``: the agent keeps its privileges, the processes its steps start drop them.

Nodes start processes through the event loop (``asyncio.create_subprocess_exec`` /
``_shell``); the agent runs on a :class:`~waterflow_agent.steploop.StepLoop`, which starts every
such process with the user's uid, primary gid and supplementary groups
(:meth:`StepUser.popen_options`: set in the child before ``exec``, so the process never runs a
single instruction of its own as root), and with ``HOME``/``USER``/``LOGNAME`` of that user unless
the step set them. Nodes see the user as ``ctx.step_user``, to hand over files they prepare for
their processes. Steps work in ``<workdir>/steps``, owned by the user; the agent's own files (its
log, its state) stay in the workdir, which the user cannot write.

A step's own ``run-as: USER`` (ADR 0038) works the same way for that step only: the agent runs
it only if started with ``--allow-run-as USER`` (:class:`RunAsPolicy`), sets the user for the
step's task (:func:`running_as`; tasks the node starts inherit it), and the step works in
``<workdir>/steps-<user>``, owned by that user.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waterflow_core import node

STEPS_DIR = "steps"
_ACCOUNT_ENV = ("HOME", "USER", "LOGNAME")


class RunAsError(Exception):
    """The ``--run-as`` user cannot be used."""


@dataclass(frozen=True)
class StepUser(node.StepUser):
    """The account steps' processes run as, with what the agent does with it."""

    @classmethod
    def resolve(cls, spec: str) -> StepUser:
        """The account named (or numbered) ``spec``, with its groups from the user database."""
        try:
            entry = pwd.getpwuid(int(spec)) if spec.isdigit() else pwd.getpwnam(spec)
        except (KeyError, OverflowError):
            raise RunAsError(f"--run-as {spec}: no such user") from None
        groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid))))
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)

    def check_agent_can_switch(self) -> None:
        """Only root may start processes as another user."""
        if os.geteuid() != 0:
            raise RunAsError(
                f"--run-as {self.name}: the agent must run as root to start steps as another user "
                f"(it runs as uid {os.geteuid()})"
            )

    def popen_options(self) -> dict[str, Any]:
        """What ``subprocess.Popen`` needs to start a process as this user."""
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def environment(self, env: Mapping[str, str] | None) -> dict[str, str]:
        """``env`` (default: ours) with this user's account variables where ours were inherited."""
        result = dict(os.environ if env is None else env)
        mine = {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}
        for key in _ACCOUNT_ENV:
            if result.get(key) == os.environ.get(key):
                result[key] = mine[key]
        return result

    def prepare_steps_dir(self, workdir: Path, name: str = STEPS_DIR) -> Path:
        """``<workdir>/<name>``, owned by this user (mode 0700), reachable by it; returned resolved."""
        steps = workdir.resolve() / name
        steps.mkdir(mode=0o700, exist_ok=True)
        info = steps.lstat()
        if not stat.S_ISDIR(info.st_mode):
            raise RunAsError(f"{steps} is not a directory")
        os.chown(steps, self.uid, self.gid, follow_symlinks=False)
        os.chmod(steps, 0o700, follow_symlinks=False)
        for parent in steps.parents:
            if not self._can_search(parent):
                raise RunAsError(
                    f"--run-as {self.name}: {parent} is not searchable by {self.name}, so its steps could "
                    f"not reach their working directory {steps}"
                )
        return steps

    def check_can_enter(self, directory: str | os.PathLike[str]) -> None:
        """Raise ``PermissionError`` (``OSError`` if it is missing) unless this user can enter ``directory``.

        ``Popen`` changes the directory before it drops privileges, so without this a step could
        start inside a directory whose parents it may not search, and reach what is below it by
        relative paths. Judged by the mode bits of the directory and every parent, along the path
        as written and as resolved (ACLs are not consulted).
        """
        path = Path(os.path.abspath(directory))
        for chain in (path, path.resolve()):
            for each in (chain, *chain.parents):
                try:
                    allowed = self._can_search(each)
                except OSError as err:  # as Popen would report it, naming the directory
                    raise OSError(err.errno, err.strerror, str(directory)) from None
                if not allowed:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(directory))

    def _can_search(self, directory: Path) -> bool:
        info = directory.stat()
        if not stat.S_ISDIR(info.st_mode):
            return False
        if info.st_uid == self.uid:
            return bool(info.st_mode & stat.S_IXUSR)
        if info.st_gid in self.groups:
            return bool(info.st_mode & stat.S_IXGRP)
        return bool(info.st_mode & stat.S_IXOTH)


def group_name(gid: int) -> str:
    """``gid``'s name, or the number when it has none (for messages)."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


_STEP_USER: ContextVar[StepUser | None] = ContextVar("waterflow_step_user", default=None)


def current_step_user() -> StepUser | None:
    """The ``run-as:`` user of the step running in this task, if it set one."""
    return _STEP_USER.get()


@contextmanager
def running_as(user: StepUser | None) -> Iterator[None]:
    """Processes started in this task (and tasks created inside) run as ``user`` (None: the default)."""
    token = _STEP_USER.set(user)
    try:
        yield
    finally:
        _STEP_USER.reset(token)


@dataclass(frozen=True)
class AllowedUser:
    """A user steps may ask for with ``run-as:``, and the directory its steps work in."""

    user: StepUser
    workdir: Path


@dataclass(frozen=True)
class RunAsPolicy:
    """The users a step's ``run-as:`` may name (the agent's ``--allow-run-as``); none by default."""

    allowed: dict[str, AllowedUser] = field(default_factory=dict)

    @classmethod
    def load(cls, names: Iterable[str], workdir: Path) -> RunAsPolicy:
        """Resolve every allowed user and prepare its ``<workdir>/steps-<user>``; needs root."""
        allowed: dict[str, AllowedUser] = {}
        for spec in dict.fromkeys(names):
            user = StepUser.resolve(spec)
            if os.geteuid() != 0:
                raise RunAsError(
                    f"--allow-run-as {spec}: the agent must run as root to start steps as another user "
                    f"(it runs as uid {os.geteuid()})"
                )
            allowed[user.name] = AllowedUser(user, user.prepare_steps_dir(workdir, f"{STEPS_DIR}-{user.name}"))
        return cls(allowed)

    def get(self, name: str) -> AllowedUser | None:
        """The allowed user ``name``, or None when the agent does not allow it."""
        return self.allowed.get(name)
