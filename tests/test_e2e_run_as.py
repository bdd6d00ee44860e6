"""``run-as:`` on a step, through a real server and a real agent running as root (ADR 0038).

The agent runs the step's processes as the named user only when it was started with
``--allow-run-as`` for that user; otherwise the step fails at once, naming the user and the option.
A compensation runs as its step's user; ``http/request`` refuses ``run-as`` (it starts no process).
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow_sdk import Client
from waterflow_testing import AgentProcess, unique_name

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="run-as needs the agent to run as root")

WORKFLOW = """
name: run-as-step
jobs:
  probe:
    runs-on: {group}
    steps:
      - id: as-user
        uses: exec/shell
        run-as: {user}
        retry: {{max-attempts: 3, initial-interval: 100ms}}
        with:
          command: 'echo "uid=$(id -u) pwd=$PWD"; touch mine'
      - id: as-agent
        uses: exec/shell
        with:
          command: id -u
"""

UNDONE = """
name: run-as-compensation
jobs:
  probe:
    runs-on: {group}
    steps:
      - id: change
        uses: exec/shell
        run-as: nobody
        with: {{command: 'true'}}
        compensate:
          uses: exec/shell
          with: {{command: 'id -u > undone-by'}}
      - id: fail
        uses: exec/shell
        with: {{command: 'exit 3'}}
      - id: request
        uses: http/request
        run-as: nobody
        if: always()
        with: {{url: 'http://127.0.0.1:9/'}}
"""


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A workdir parent every user can search (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="waterflow-runas-step-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_run_as_allowed_user_and_refused_user(start_server, temporal_dev, public_tmp: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    agent = AgentProcess(
        unique_name("agent"),
        [group],
        address=temporal_dev.address,
        namespace=temporal_dev.namespace,
        workdir=public_tmp,
        args=["--allow-run-as", "nobody"],
    ).start()
    try:
        agent.wait_ready()
        server = start_server()
        with Client(server.url) as client:
            ok = client.wait(
                client.submit(textwrap.dedent(WORKFLOW.format(group=group, user="nobody"))).id, timeout=180, poll=0.2
            )
            refused = client.wait(
                client.submit(textwrap.dedent(WORKFLOW.format(group=group, user="daemon"))).id, timeout=180, poll=0.2
            )
            undone = client.wait(client.submit(textwrap.dedent(UNDONE.format(group=group))).id, timeout=180, poll=0.2)
    finally:
        agent.stop()
    assert ok.succeeded, ok.error
    steps = {step.id: step for _, step in ok.steps()}
    seen = dict(part.split("=", 1) for part in steps["as-user"].outputs["stdout"].split())
    nobody = pwd.getpwnam("nobody")
    steps_dir = public_tmp / "work" / "steps-nobody"
    assert seen == {"uid": str(nobody.pw_uid), "pwd": str(steps_dir)}
    assert (steps_dir / "mine").stat().st_uid == nobody.pw_uid
    assert steps["as-agent"].outputs["stdout"].strip() == "0"  # the next step is the agent's own again

    assert not refused.succeeded
    assert "does not allow running steps as user 'daemon'" in (refused.error or "")
    assert "--allow-run-as daemon" in (refused.error or "")
    first = {step.id: step for _, step in refused.steps()}["as-user"]
    # Not retried: no agent configuration changes between attempts.
    assert first.status == "failure" and first.attempt in (0, 1) and first.attempt_errors == []

    # The compensation undoes what nobody's processes did, as nobody; an in-process node refuses run-as.
    assert not undone.succeeded
    assert (steps_dir / "undone-by").read_text().strip() == str(nobody.pw_uid)
    request = {step.id: step for _, step in undone.steps()}["request"]
    assert request.status == "failure"
    assert "run-as: nobody does not apply to http/request" in (request.error or "")
