"""Stopping an exec's processes on the real daemon, including the path for agents that may not signal them."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import pytest

from waterflow_node_docker.engine import Engine, path
from waterflow_node_docker.stopping import in_container, namespaced_pgid, signal_in_container, wait_exec
from waterflow_testing import eventually

if TYPE_CHECKING:  # the fixture's class; conftest is not importable under --import-mode=importlib
    from conftest import Containers

pytestmark = pytest.mark.integration


async def _start(engine: Engine, container_id: str, command: list[str]) -> int:
    created = await engine.call("POST", path("/containers/{}/exec", container_id), body={"Cmd": command})
    exec_id = str(created["Id"])
    await engine.call("POST", path("/exec/{}/start", exec_id), body={"Detach": True})
    state = await wait_exec(engine, exec_id, started=True, timeout=30)
    assert state.get("Running"), state
    return int(state["Pid"])


async def test_signal_from_inside_the_container_stops_the_group(containers: Containers) -> None:
    name = containers.run()
    async with Engine.from_environment("test") as engine:
        data = await engine.inspect("/containers/{}/json", name)
        assert data is not None
        container_id = str(data["Id"])
        pid = await _start(engine, container_id, ["sh", "-c", "sleep 1004 & sleep 1005"])
        assert in_container(pid, container_id) and not in_container(os.getpid(), container_id)
        pgid = namespaced_pgid(pid)
        assert pgid is not None and pgid != pid  # the container's own numbering
        await eventually(lambda: containers.processes(name), lambda procs: "sleep 1004" in procs)
        await signal_in_container(engine, container_id, pgid, signal.SIGTERM)
    await eventually(lambda: containers.processes(name), lambda procs: procs == ["sleep 3600"])
