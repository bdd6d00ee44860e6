"""Hot reload: the file watcher and the safety-net poll each pick up installs on their own (ADR 0014)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from watchfiles import Change, DefaultFilter

from waterflow_agent.reloader import install_change
from waterflow_testing import StartAgent, eventually, unique_name
from waterflow_testing.harness import StepHarness, make_step


async def echo_version(harness: StepHarness, group: str) -> str | None:
    """The version of ``test/echo`` the agent of ``group`` runs now; ``None`` while it has none."""
    try:
        result = await harness.run(make_step("test/echo", {"message": "m"}), group)
    except WorkflowFailureError:
        return None
    return str(result.outputs["version"])


@pytest.mark.unit
def test_filter_keeps_what_installers_touch_even_in_site_packages() -> None:
    site = "/srv/app/.venv/lib/python3.11/site-packages"
    assert install_change(Change.added, f"{site}/wf_test_nodes-1.0.0.dist-info")
    assert install_change(Change.deleted, f"{site}/old-0.9.egg-info")
    assert install_change(Change.added, f"{site}/__editable__.wf_test_nodes-1.0.0.pth")
    # The trap: watchfiles' default filter drops everything under a .venv directory (and, in
    # older releases, under any site-packages directory).
    assert not DefaultFilter()(Change.added, f"{site}/wf_test_nodes-1.0.0.dist-info")
    # Bytecode written on import, and a step's files in a working directory on sys.path.
    assert not install_change(Change.added, f"{site}/__pycache__")
    assert not install_change(Change.modified, f"{site}/wf_test_nodes.py")


@pytest.mark.integration
async def test_watcher_sees_installs_and_upgrades_in_site_packages(
    step_harness: StepHarness,
    start_agent: StartAgent,
    install_nodes: Callable[[Path, str], Path],
    group: str,
    tmp_path: Path,
) -> None:
    site = tmp_path / ".venv" / "lib" / "python3.11" / "site-packages"  # what the default filter drops
    site.mkdir(parents=True)
    # A poll that never comes during the test: whatever is picked up, the watcher saw.
    agent = start_agent(unique_name(), [group], pythonpath=[site], args=["--reload-poll-interval", "1h"])
    assert await echo_version(step_harness, group) is None

    install_nodes(site, "1.0.0")
    assert await eventually(lambda: echo_version(step_harness, group), lambda v: v == "1.0.0")
    install_nodes(site, "2.0.0")  # an upgrade: the old dist-info goes, a new one comes
    assert await eventually(lambda: echo_version(step_harness, group), lambda v: v == "2.0.0")
    assert "cannot watch" not in agent.output

    agent.terminate()  # the watcher's thread must not hold up a clean exit
    assert agent.wait(60) == 0


@pytest.mark.integration
async def test_poll_alone_sees_installs_when_the_watcher_is_off(
    step_harness: StepHarness,
    start_agent: StartAgent,
    install_nodes: Callable[[Path, str], Path],
    group: str,
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    agent = start_agent(
        unique_name(), [group], pythonpath=[site], args=["--no-reload-watch", "--reload-poll-interval", "1s"]
    )
    agent.wait_for_output("watcher disabled")
    assert await echo_version(step_harness, group) is None

    install_nodes(site, "1.0.0")
    assert await eventually(lambda: echo_version(step_harness, group), lambda v: v == "1.0.0")
    install_nodes(site, "2.0.0")
    assert await eventually(lambda: echo_version(step_harness, group), lambda v: v == "2.0.0")
