"""``--run-as``: processes started through the agent's event loop run as the step user."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow_agent.runas import RunAsError, StepUser
from waterflow_agent.steploop import loop_factory

pytestmark = pytest.mark.unit

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="starting processes as another user needs root")


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A temp directory every user can search (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="waterflow-runas-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_resolve_by_name_and_uid() -> None:
    nobody = StepUser.resolve("nobody")
    assert nobody == StepUser.resolve(str(nobody.uid))
    assert nobody.gid in nobody.groups
    assert nobody.home == pwd.getpwnam("nobody").pw_dir
    with pytest.raises(RunAsError, match="no-such-user-xyz: no such user"):
        StepUser.resolve("no-such-user-xyz")


def test_account_variables_follow_the_user_unless_the_step_set_them() -> None:
    nobody = StepUser.resolve("nobody")
    env = nobody.environment({**os.environ, "USER": "chosen-by-step"})
    assert (env["HOME"], env["LOGNAME"], env["USER"]) == (nobody.home, "nobody", "chosen-by-step")
    assert env["PATH"] == os.environ["PATH"]


@needs_root
def test_processes_of_the_loop_run_as_the_user(public_tmp: Path) -> None:
    nobody = StepUser.resolve("nobody")
    factory = loop_factory(nobody)

    async def identity() -> list[str]:
        # Asking for root explicitly does not help: the loop's user wins.
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", 'id -u; id -g; id -G; echo "$HOME"; touch "$1/mine"', "sh", str(public_tmp),
            stdout=asyncio.subprocess.PIPE, user=0, group=0, cwd=public_tmp,
        )
        out, _ = await proc.communicate()
        assert proc.returncode != 0  # the directory is root's: the touch fails
        shell = await asyncio.create_subprocess_shell("id -u", stdout=asyncio.subprocess.PIPE)
        out2, _ = await shell.communicate()
        return [*out.decode().split("\n")[:4], out2.decode().strip()]

    with asyncio.Runner(loop_factory=factory) as runner:
        uid, gid, groups, home, shell_uid = runner.run(identity())
    assert (int(uid), int(gid), int(shell_uid)) == (nobody.uid, nobody.gid, nobody.uid)
    assert sorted(map(int, groups.split())) == sorted(nobody.groups)
    assert home == nobody.home
    assert not (public_tmp / "mine").exists()


@needs_root
def test_steps_dir_belongs_to_the_user(public_tmp: Path) -> None:
    nobody = StepUser.resolve("nobody")
    workdir = public_tmp / "agent"
    workdir.mkdir()
    steps = nobody.prepare_steps_dir(workdir)
    assert steps == workdir.resolve() / "steps"
    info = steps.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (nobody.uid, nobody.gid, 0o700)
    assert workdir.stat().st_uid == 0

    hidden = public_tmp / "private"
    (hidden / "agent").mkdir(parents=True)
    hidden.chmod(0o700)
    with pytest.raises(RunAsError, match=r"private is not searchable by nobody"):
        nobody.prepare_steps_dir(hidden / "agent")


@needs_root
def test_a_cwd_the_user_could_not_enter_is_refused(public_tmp: Path) -> None:
    nobody = StepUser.resolve("nobody")
    below = public_tmp / "private" / "open"
    below.mkdir(parents=True)
    below.chmod(0o777)
    (public_tmp / "private").chmod(0o700)
    nobody.check_can_enter(public_tmp)
    for directory in (public_tmp / "private", below):
        with pytest.raises(PermissionError) as info:
            nobody.check_can_enter(directory)
        assert info.value.filename == str(directory)
    with pytest.raises(FileNotFoundError):
        nobody.check_can_enter(public_tmp / "missing")
    # As resolved too: a link from a reachable place into the closed one does not help.
    (public_tmp / "link").symlink_to(below)
    with pytest.raises(PermissionError):
        nobody.check_can_enter(public_tmp / "link")

    async def start_in(cwd: Path) -> None:
        await asyncio.create_subprocess_exec("true", cwd=cwd)

    with asyncio.Runner(loop_factory=loop_factory(nobody)) as runner, pytest.raises(PermissionError):
        runner.run(start_in(below))


def test_unknown_user_is_a_clear_startup_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-P", "-m", "waterflow_agent", "--name", "x", "--workdir", str(tmp_path / "work"),
         "--temporal-address", "127.0.0.1:1", "--run-as", "no-such-user-xyz"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Error: --run-as no-such-user-xyz: no such user" in done.stderr
    assert "Traceback" not in done.stderr
