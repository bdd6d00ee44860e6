"""The scratch files of exec steps: private to the step's processes, read back safely; output-cap bounds."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from waterflow_core.node import NodeContext, StepUser
from waterflow_core.plugins import PluginManager
from waterflow_core.registry import NodeRegistry
from waterflow_node_shell import ShellNode
from waterflow_node_shell.models import MAX_CAP
from waterflow_node_shell.scratch import Scratch, ScratchFileError
from waterflow_testing import recording_context

pytestmark = pytest.mark.unit


def nobody() -> StepUser:
    entry = pwd.getpwnam("nobody")
    groups = tuple(sorted(set(os.getgrouplist(entry.pw_name, entry.pw_gid))))
    return StepUser(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)


async def shell(ctx: NodeContext, command: str) -> ShellNode.Outputs:
    return await ShellNode().run(ctx, ShellNode.Inputs.model_validate({"command": command}))


def test_private_to_the_agent_without_a_step_user() -> None:
    with Scratch(None) as scratch:
        path = scratch.file("stdin", b"data")
        assert scratch.path.stat().st_mode & 0o777 == 0o700
        assert (path.stat().st_mode & 0o777, path.stat().st_uid) == (0o600, os.geteuid())
        assert scratch.read("stdin", 10) == b"data"
        with pytest.raises(FileExistsError):
            scratch.file("stdin")
    assert not scratch.path.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another user needs root")
def test_handed_to_the_step_user_who_cannot_change_the_directory() -> None:
    user = nobody()
    with Scratch(user) as scratch:
        path = scratch.file("output")
        info = scratch.path.stat()
        # The user reaches its files by name, but can neither list nor add, rename or replace.
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (0, user.gid, 0o710)
        assert (path.stat().st_uid, path.stat().st_gid, path.stat().st_mode & 0o777) == (user.uid, user.gid, 0o600)


def test_reading_back_refuses_links_fifos_and_large_files(tmp_path: Path) -> None:
    secret = tmp_path / "agent-only"
    secret.write_text("agent secret\n")
    with Scratch(None) as scratch:
        (scratch.path / "link").symlink_to(secret)
        with pytest.raises(OSError, match="Too many levels of symbolic links"):
            scratch.read("link", 100)
        os.mkfifo(scratch.path / "fifo")
        with pytest.raises(ScratchFileError, match="not a regular file"):
            scratch.read("fifo", 100)  # and does not hang waiting for a writer
        scratch.file("big", b"x" * 101)
        with pytest.raises(ScratchFileError, match="larger than 100 bytes"):
            scratch.read("big", 100)


@pytest.mark.parametrize(
    "attack",
    ['ln -sf "$AGENT_FILE" "$WATERFLOW_OUTPUT"', 'rm "$WATERFLOW_OUTPUT"; mkfifo "$WATERFLOW_OUTPUT"'],
    ids=["symlink", "fifo"],
)
async def test_a_step_cannot_swap_the_outputs_file_for_another(tmp_path: Path, attack: str) -> None:
    agent_file = tmp_path / "agent-only"
    agent_file.write_text("secret=agent secret\n")
    ctx, _ = recording_context(tmp_path)
    ctx.env = {"AGENT_FILE": str(agent_file)}
    with pytest.raises(ApplicationError) as info:
        await shell(ctx, attack)
    assert info.value.type == "WaterflowStepFailed"
    assert info.value.message.startswith("invalid $WATERFLOW_OUTPUT file:")
    assert "agent secret" not in str(info.value.message) + str(info.value.details)


def test_output_cap_is_bounded() -> None:
    inputs = ShellNode.Inputs
    assert inputs.model_validate({"command": "x", "output-cap": MAX_CAP}).output_cap == MAX_CAP == 262_144
    with pytest.raises(ValueError, match="less than or equal to 262144"):
        inputs.model_validate({"command": "x", "output-cap": MAX_CAP + 1})
    # Refused when the workflow is validated, before any agent sees it.
    registry = NodeRegistry.from_plugins(PluginManager(allowlist=["shell"]))
    assert registry.check_with("exec/shell", {"command": "x", "output-cap": "150000000"}) != []
    assert registry.check_with("exec/script", {"script": "x", "output-cap": "262144"}) == []
