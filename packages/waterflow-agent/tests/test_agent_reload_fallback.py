"""Hot reload without inotify: the agent says so once and still picks installs up (ADR 0045).

Many agents on one host exhaust the per-user inotify limits (``fs.inotify.max_user_instances``,
128 by default: about 120 agents). Each test runs a real agent in its own user namespace whose
limit is 0, so the kernel refuses the agent's watcher exactly as it does on a crowded host, while
every other process on this machine keeps its inotify quota. The safety-net poll is set to an
hour: whatever the agent picks up, the modification-time fallback saw.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError

from waterflow_testing import eventually, unique_name
from waterflow_testing.children import AgentProcess
from waterflow_testing.devserver import DevServer
from waterflow_testing.harness import StepHarness, make_step

WARNING = "cannot watch the plugin directories for node package changes"


def limited(setting: str) -> list[str]:
    """A command prefix: run in a new user namespace whose ``/proc/sys/user/<setting>`` is 0."""
    return ["unshare", "--user", "--map-root-user", "sh", "-c",
            f'echo 0 > /proc/sys/user/{setting} && exec "$@"', "limited"]  # fmt: skip


@pytest.fixture(scope="module")
def user_namespaces() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1)")
    probe = subprocess.run([*limited("max_inotify_instances"), "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot lower inotify limits in a user namespace here: {probe.stderr.strip()}")


@pytest.fixture
def start_limited(temporal_dev: DevServer, tmp_path: Path) -> Iterator[Callable[[str, str, Path], AgentProcess]]:
    agents: list[AgentProcess] = []

    def start(setting: str, group: str, site: Path) -> AgentProcess:
        name = unique_name()
        agent = AgentProcess(
            name,
            [group],
            address=temporal_dev.address,
            namespace=temporal_dev.namespace,
            workdir=tmp_path / name,
            pythonpath=[site],
            args=["--reload-poll-interval", "1h"],
        )
        agent.command = [*limited(setting), *agent.command]
        agents.append(agent)
        return agent.start().wait_ready()

    yield start
    for agent in agents:
        agent.stop()


async def echo_version(harness: StepHarness, group: str) -> str | None:
    """The version of ``test/echo`` the agent of ``group`` runs now; ``None`` while it has none."""
    try:
        result = await harness.run(make_step("test/echo", {"message": "m"}), group)
    except WorkflowFailureError:
        return None
    return str(result.outputs["version"])


@pytest.mark.integration
@pytest.mark.usefixtures("user_namespaces")
@pytest.mark.parametrize(
    ("setting", "error"),
    [
        ("max_inotify_instances", "Too many open files"),  # no inotify instance at all (EMFILE)
        ("max_inotify_watches", "watch limit reached"),  # an instance, but no watch on it (ENOSPC)
    ],
)
async def test_agent_without_inotify_picks_up_installs_by_modification_time(
    step_harness: StepHarness,
    start_limited: Callable[[str, str, Path], AgentProcess],
    install_nodes: Callable[[Path, str], Path],
    group: str,
    tmp_path: Path,
    setting: str,
    error: str,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    agent = start_limited(setting, group, site)
    warning = agent.wait_for_output(WARNING)
    assert error in warning and "fs.inotify.max_user_instances" in warning, warning
    assert await echo_version(step_harness, group) is None

    install_nodes(site, "1.0.0")
    assert await eventually(lambda: echo_version(step_harness, group), lambda v: v == "1.0.0")
    install_nodes(site, "2.0.0")  # an upgrade: the old dist-info goes, a new one comes
    assert await eventually(lambda: echo_version(step_harness, group), lambda v: v == "2.0.0")
    assert agent.output.count(WARNING) == 1  # one warning, not one per look

    agent.terminate()  # nothing of the fallback holds up a clean exit
    assert agent.wait(60) == 0
