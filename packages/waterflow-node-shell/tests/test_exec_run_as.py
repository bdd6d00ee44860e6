"""exec nodes on an agent started with ``--run-as nobody``: ``$WATERFLOW_OUTPUT``, inline and path
scripts and ``stdin`` work, and the step has nobody's rights, not the agent's.

Needs root (skipped, saying so, otherwise). The agent, its workdir and the scripts live in a temp
directory every user can search; pytest's own temp directories are private to root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from waterflow_testing import AgentProcess, unique_name
from waterflow_testing.devserver import DevServer
from waterflow_testing.harness import StepHarness, make_step

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs the agent to run as root")

SECRET = "root-only-content"
STDIN = "line one\nsecond line é\n"
# What every probe prints and records, so each kind of step proves the same things.
PROBE = r"""
echo "user=$(id -un)"
echo "stdin=$(cat | base64 -w0)"
echo "reopened=$(base64 -w0 < /dev/stdin)"
echo "written=yes" >> "$WATERFLOW_OUTPUT"
cat "$ROOT_ONLY" 2>/dev/null || echo "root-only=denied"
ls "$STATE" > /dev/null 2>&1 || echo "agent-state=denied"
ls "$(dirname "$WATERFLOW_OUTPUT")" > /dev/null 2>&1 || echo "scratch-listing=denied"
ln -sf "$ROOT_ONLY" "$WATERFLOW_OUTPUT" 2>/dev/null || echo "outputs-swap=denied"
"""


@pytest.fixture
def public() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="waterflow-runas-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture(loop_scope="session")
async def agent(temporal_dev: DevServer, public: Path) -> AsyncIterator[AgentProcess]:
    agent = AgentProcess(
        unique_name("agent"),
        [unique_name("group")],
        address=temporal_dev.address,
        namespace=temporal_dev.namespace,
        workdir=public / "agent",
        args=["--run-as", "nobody"],
    ).start()
    try:
        agent.wait_ready()
        yield agent
    finally:
        agent.stop()


def _env(agent: AgentProcess, public: Path) -> dict[str, str]:
    root_only = public / "root-only"
    root_only.write_text(SECRET + "\n")
    root_only.chmod(0o600)
    return {"ROOT_ONLY": str(root_only), "STATE": str(agent.workdir / "work" / "state")}


def _seen(stdout: str) -> dict[str, str]:
    return {key: value for key, _, value in (line.partition("=") for line in stdout.splitlines())}


def _assert_nobody(result_outputs: dict[str, object]) -> None:
    seen = _seen(str(result_outputs["stdout"]))
    assert seen["user"] == "nobody"
    encoded = __import__("base64").b64encode(STDIN.encode()).decode()
    assert seen["stdin"] == encoded and seen["reopened"] == encoded
    assert result_outputs["written"] == "yes"
    for what in ("root-only", "agent-state", "scratch-listing", "outputs-swap"):
        assert seen.get(what) == "denied", (what, seen)
    assert SECRET not in str(result_outputs)


async def test_shell_outputs_and_stdin(step_harness: StepHarness, agent: AgentProcess, public: Path) -> None:
    task = make_step("exec/shell", {"command": PROBE, "stdin": STDIN, "env": _env(agent, public)})
    result = await step_harness.run(task, agent.groups[0])
    _assert_nobody(result.outputs)


@pytest.mark.parametrize("interpreter", ["bash", "sh"])
async def test_inline_scripts(step_harness: StepHarness, agent: AgentProcess, public: Path, interpreter: str) -> None:
    task = make_step(
        "exec/script", {"script": PROBE, "interpreter": interpreter, "stdin": STDIN, "env": _env(agent, public)}
    )
    result = await step_harness.run(task, agent.groups[0])
    _assert_nobody(result.outputs)


async def test_script_by_path(step_harness: StepHarness, agent: AgentProcess, public: Path) -> None:
    script = public / "probe.sh"
    script.write_text("#!/bin/bash\n" + PROBE)
    script.chmod(0o755)
    task = make_step("exec/script", {"path": str(script), "stdin": STDIN, "env": _env(agent, public)})
    result = await step_harness.run(task, agent.groups[0])
    _assert_nobody(result.outputs)


async def test_what_nobody_cannot_run_or_enter_fails_saying_who_runs_it(
    step_harness: StepHarness, agent: AgentProcess, public: Path
) -> None:
    script = public / "root-only.sh"
    script.write_text(f"#!/bin/sh\necho {SECRET}\n")
    script.chmod(0o700)
    private = public / "private"
    private.mkdir(mode=0o700)
    # Open itself, but below a directory nobody may search: reachable only by starting inside it.
    below = private / "open"
    below.mkdir()
    below.chmod(0o777)
    (below / "file").write_text(SECRET)
    (below / "file").chmod(0o644)
    for with_, expected in [
        ({"path": str(script)}, f"cannot start {str(script)!r}: Permission denied (steps run as nobody)"),
        ({"script": "true", "cwd": str(private)}, f"cannot enter the working directory {str(private)!r}"),
        ({"script": "cat file", "cwd": str(below)}, f"cannot enter the working directory {str(below)!r}"),
    ]:
        with pytest.raises(WorkflowFailureError) as info:
            await step_harness.run(make_step("exec/script", with_), agent.groups[0])
        activity_error = info.value.cause
        assert isinstance(activity_error, ActivityError)
        cause = activity_error.cause
        assert isinstance(cause, ApplicationError) and cause.type == "WaterflowBadInput"
        assert expected in cause.message
    # Through an interpreter the script is read as nobody too: refused, its content never shown.
    with pytest.raises(WorkflowFailureError) as info:
        await step_harness.run(make_step("exec/script", {"path": str(script), "interpreter": "sh"}), agent.groups[0])
    assert SECRET not in str(info.value.cause.cause)  # type: ignore[union-attr]
    assert pwd.getpwnam("nobody").pw_uid != 0
