"""Fixtures of the agent tests: a node package installed for real, and unique groups.

Steps reach the agent through Temporal, via the ``step_harness`` fixture of
:mod:`waterflow_testing.pytest_plugin` (a stand-in for the interpreter workflow).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from waterflow_testing import write_node_package

# A node package installed into a temp dir on the agent's PYTHONPATH: real entry point discovery.
TEST_NODES = '''
import asyncio, os, signal, subprocess
from pathlib import Path
from pydantic import BaseModel
from waterflow_core import Node, NodeContext, hookimpl

VERSION = "{version}"

class Echo(Node):
    type = "test/echo"
    version = VERSION
    class Inputs(BaseModel):
        message: str
        count: int = 1
    class Outputs(BaseModel):
        message: str
        count: int
        version: str
        env: dict[str, str]
        workdir: str
        agent: str
    async def run(self, ctx: NodeContext, inputs):
        ctx.log.info("echo: %s", inputs.message)
        return self.Outputs(message=inputs.message, count=inputs.count, version=VERSION,
                            env=dict(ctx.env), workdir=str(ctx.workdir), agent=ctx.agent)

class Shellish(Node):
    type = "test/shellish"
    version = VERSION
    shell_inputs = frozenset({{"command"}})
    class Inputs(BaseModel):
        command: str
    class Outputs(BaseModel):
        command: str
        env: dict[str, str]
    async def run(self, ctx: NodeContext, inputs):
        return self.Outputs(command=inputs.command, env=dict(ctx.env))

class Fail(Node):
    type = "test/fail"
    version = VERSION
    class Inputs(BaseModel):
        reason: str
    async def run(self, ctx: NodeContext, inputs):
        ctx.log.warning("about to fail because %s", inputs.reason)
        raise RuntimeError("failed: " + inputs.reason)

class Sleep(Node):
    """Runs `sleep` in its own process group; kills the group when cancelled."""
    type = "test/sleep"
    version = VERSION
    class Inputs(BaseModel):
        seconds: float
        marker: str
    async def run(self, ctx: NodeContext, inputs):
        marker = Path(inputs.marker)
        proc = await asyncio.create_subprocess_exec("sleep", str(inputs.seconds), start_new_session=True)
        marker.write_text(f"started {{proc.pid}}")
        try:
            await proc.wait()
        except asyncio.CancelledError:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            marker.write_text(f"cancelled {{proc.pid}}")
            raise
        marker.write_text(f"finished {{proc.pid}}")
        return self.Outputs()

class Detach(Node):
    """Starts a process in a session of its own through the event loop, and never stops it."""
    type = "test/detach"
    version = VERSION
    class Inputs(BaseModel):
        pidfile: str
        wait: bool = True
    async def run(self, ctx: NodeContext, inputs):
        proc = await asyncio.create_subprocess_exec("sleep", "1000", start_new_session=True)
        Path(inputs.pidfile).write_text(str(proc.pid))
        if inputs.wait:
            await asyncio.sleep(3600)
        return self.Outputs()

class Flaky(Node):
    """Fails its first attempts, or every attempt on the agent named ``fail_on``."""
    type = "test/flaky"
    version = VERSION
    class Inputs(BaseModel):
        succeed_on: int = 1
        fail_on: str = ""
    async def run(self, ctx: NodeContext, inputs):
        ctx.log.info("attempt %d on %s", ctx.attempt, ctx.agent)
        if ctx.attempt < inputs.succeed_on or ctx.agent == inputs.fail_on:
            raise RuntimeError(f"attempt {{ctx.attempt}} failed on {{ctx.agent}}")
        return self.Outputs()

@hookimpl
def waterflow_register_nodes():
    return [Echo, Shellish, Fail, Sleep, Detach, Flaky]
'''


def install_test_nodes(root: Path, version: str = "1.0.0") -> Path:
    """(Re)install the test node package into ``root``; returns ``root``."""
    return write_node_package(
        root, "wf-test-nodes", "wf_test_nodes", TEST_NODES.format(version=version), version=version
    )


@pytest.fixture
def install_nodes() -> Callable[[Path, str], Path]:
    """``install_nodes(root, version)``: (re)install the test node package into ``root``."""
    return install_test_nodes


@pytest.fixture
def nodes_dir(tmp_path: Path) -> Path:
    """A directory with the test node package installed, for an agent's PYTHONPATH."""
    return install_test_nodes(tmp_path / "site")


@pytest.fixture
def group() -> str:
    """A server group (task queue) no other test serves."""
    return f"group-{uuid.uuid4().hex[:10]}"
