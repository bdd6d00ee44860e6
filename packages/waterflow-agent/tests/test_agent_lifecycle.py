"""Agent process life cycle: graceful shutdown, hot reload, surviving Temporal outages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError

from waterflow_core.agent_registry import describe_agent
from waterflow_testing import AgentProcess, StartAgent, eventually, unique_name
from waterflow_testing.devserver import DevServer, free_port
from waterflow_testing.harness import StepHarness, make_step


async def test_sigterm_lets_running_steps_finish(
    step_harness: StepHarness, start_agent: StartAgent, nodes_dir: Path, group: str, tmp_path: Path
) -> None:
    agent = start_agent(unique_name(), [group], pythonpath=[nodes_dir], args=["--grace", "60s"])
    marker = tmp_path / "marker"
    handle = await step_harness.start(make_step("test/sleep", {"seconds": 2, "marker": str(marker)}), group)
    await eventually(marker.exists)

    agent.terminate()
    result = await handle.result()  # the step finished during the grace period
    assert result.agent == agent.name
    assert marker.read_text().startswith("finished")
    assert agent.wait(60) == 0


async def test_second_signal_exits_at_once(
    step_harness: StepHarness, start_agent: StartAgent, nodes_dir: Path, group: str, tmp_path: Path
) -> None:
    agent = start_agent(unique_name(), [group], pythonpath=[nodes_dir], args=["--grace", "10m"])
    marker = tmp_path / "marker"
    await step_harness.start(make_step("test/sleep", {"seconds": 600, "marker": str(marker)}), group)
    await eventually(marker.exists)
    agent.terminate()
    agent.wait_for_output("shutting down")
    agent.terminate()
    assert agent.wait(60) == 1
    assert marker.read_text().startswith("cancelled")  # the node was cancelled, and cleaned up


async def test_installed_and_upgraded_nodes_are_picked_up(
    step_harness: StepHarness,
    temporal_client: Client,
    start_agent: StartAgent,
    install_nodes: Callable[[Path, str], Path],
    group: str,
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    agent = start_agent(unique_name(), [group], pythonpath=[site])
    with pytest.raises(WorkflowFailureError):
        await step_harness.run(make_step("test/echo", {"message": "m"}), group)

    install_nodes(site, "1.0.0")

    async def echo_version() -> str | None:
        try:
            result = await step_harness.run(make_step("test/echo", {"message": "m"}), group)
        except WorkflowFailureError:
            return None
        return str(result.outputs["version"])

    assert await eventually(echo_version, lambda v: v == "1.0.0")
    install_nodes(site, "2.0.0")
    assert await eventually(echo_version, lambda v: v == "2.0.0")

    registered = await eventually(
        lambda: describe_agent(temporal_client, agent.name),
        lambda a: a is not None and any(n.version == "2.0.0" for n in a.nodes),
    )
    assert {n.type for n in registered.nodes} >= {"test/echo", "test/sleep"}


async def test_agent_waits_for_temporal_and_survives_its_restart(
    tmp_path: Path, nodes_dir: Path, group: str
) -> None:
    server = DevServer(tmp_path / "temporal", port=free_port(), headless=True)
    agent = AgentProcess(
        unique_name(),
        [group],
        address=server.address,
        workdir=tmp_path / "agent",
        pythonpath=[nodes_dir],
    ).start()
    try:
        # Temporal is not there yet: the agent keeps retrying instead of exiting.
        agent.wait_for_output("cannot reach Temporal")
        await server.start()
        agent.wait_ready()
        harness = StepHarness(await server_client(server), "harness")
        async with harness.serve():
            assert (await harness.run(make_step("test/echo", {"message": "1"}), group)).agent == agent.name

        await server.stop()
        await server.start()  # same data dir, same port

        harness = StepHarness(await server_client(server), "harness")
        async with harness.serve():
            assert (await harness.run(make_step("test/echo", {"message": "2"}), group)).agent == agent.name
        assert agent.returncode is None
    finally:
        agent.stop()
        await server.stop()


async def server_client(server: DevServer) -> Client:
    from waterflow_core.temporal import connect

    return await connect(server.address)
