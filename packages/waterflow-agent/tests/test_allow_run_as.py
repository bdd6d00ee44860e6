"""``--allow-run-as`` and a step's own ``run-as:`` (ADR 0038): the allowed users, their directories,
and processes started by concurrent steps running as each step's own user."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow_agent.runas import RunAsError, RunAsPolicy, StepUser, current_step_user, running_as
from waterflow_agent.steploop import loop_factory

pytestmark = pytest.mark.unit

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="starting processes as another user needs root")


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A temp directory every user can search (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="waterflow-allow-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_no_user_is_allowed_by_default(tmp_path: Path) -> None:
    policy = RunAsPolicy.load([], tmp_path)
    assert policy.get("nobody") is None and policy.get("root") is None


def test_an_unknown_user_stops_the_agent(tmp_path: Path) -> None:
    with pytest.raises(RunAsError, match="no-such-user-xyz: no such user"):
        RunAsPolicy.load(["no-such-user-xyz"], tmp_path)


@needs_root
def test_allowed_users_get_their_own_steps_directory(public_tmp: Path, tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    policy = RunAsPolicy.load(["nobody", str(nobody.pw_uid)], public_tmp)  # a uid names the same user
    allowed = policy.get("nobody")
    assert allowed is not None and list(policy.allowed) == ["nobody"]
    info = allowed.workdir.stat()
    assert allowed.workdir == public_tmp / "steps-nobody"
    assert (info.st_uid, info.st_mode & 0o777) == (nobody.pw_uid, 0o700)
    assert policy.get("daemon") is None
    # A workdir the user could not reach is refused at start, naming the reason.
    with pytest.raises(RunAsError, match="is not searchable by nobody"):
        RunAsPolicy.load(["nobody"], tmp_path)


@needs_root
def test_concurrent_steps_run_their_processes_as_their_own_user() -> None:
    nobody, daemon = StepUser.resolve("nobody"), StepUser.resolve("daemon")

    async def step(user: StepUser | None) -> int:
        with running_as(user):
            assert current_step_user() == user
            await asyncio.sleep(0.05)  # the other steps start their processes meanwhile
            # A task the node starts inherits the step's user.
            proc = await asyncio.create_task(
                asyncio.create_subprocess_exec("id", "-u", stdout=asyncio.subprocess.PIPE, cwd="/")
            )
            out, _ = await proc.communicate()
        assert current_step_user() is None
        return int(out)

    async def steps() -> list[int]:
        return list(await asyncio.gather(step(nobody), step(daemon), step(None)))

    with asyncio.Runner(loop_factory=loop_factory(None)) as runner:
        assert runner.run(steps()) == [nobody.uid, daemon.uid, 0]
