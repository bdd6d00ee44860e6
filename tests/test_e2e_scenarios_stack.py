"""Scenario 2: examples/distributed-stack.yaml through the real CLI, three agents, real Docker.

One agent in group `db`, two in `web` (each with its own `web-port` fact: they share this
machine's host network and Docker daemon). Healthy: the database, then each web server in turn,
all healthy and left running. Injected fault (`health-path` of a page that does not exist): the
first web server's health check fails for good, the rollout stops before the second server,
and the compensations bring the first web server's project down, then the database's: nothing
is left. Docker and compose are required (skipped without them, except in CI, where it fails).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow_sdk import Client
from waterflow_testing import unique_name
from waterflow_testing.docker import skip_or_fail
from waterflow_testing.processes import free_port
from waterflow_testing.server import run_cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "distributed-stack.yaml"
STACK_DIR = REPO / "examples" / "distributed-stack"
RUN_TIMEOUT = 300.0
PROJECT_LABEL = "com.docker.compose.project"


def _containers(prefix: str) -> dict[str, str]:
    """Containers of the compose projects named ``prefix-*``: project -> state."""
    listed = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={PROJECT_LABEL}",
         "--format", f'{{{{.Label "{PROJECT_LABEL}"}}}} {{{{.State}}}}'],
        capture_output=True, text=True, check=True,
    )
    pairs = (line.split() for line in listed.stdout.splitlines() if line.strip())
    return {project: state for project, state in pairs if project.startswith(f"{prefix}-")}


@pytest.fixture
def project(docker_test_image: str) -> Iterator[str]:
    """A unique prefix of compose project names; whatever the runs leave is removed afterwards."""
    if shutil.which("docker-compose") is None and subprocess.run(
        ["docker", "compose", "version"], capture_output=True, check=False
    ).returncode:
        skip_or_fail("neither `docker compose` nor `docker-compose` is installed")
    prefix = f"wfstack{uuid.uuid4().hex[:8]}"
    yield prefix
    for name in _containers(prefix):
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={PROJECT_LABEL}={name}"],
            capture_output=True, text=True, check=False,
        ).stdout.split()
        subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True, check=False)


@pytest.fixture
def stack(start_server, start_agent):  # type: ignore[no-untyped-def]
    """A server and three agents: one in `db`, two in `web` with their own ports; (url, db, webs)."""
    server = start_server()
    env = {"WATERFLOW_FILE_ROOTS": str(REPO / "examples")}
    db = start_agent(unique_name("db"), ["db"], env=env).name
    webs = sorted(
        start_agent(unique_name("web"), ["web"], env=env, args=["--fact", f"web-port={free_port()}"]).name
        for _ in range(2)
    )
    return server.url, db, webs


def _submit(url: str, project: str, *inputs: str) -> tuple[int, str]:
    cli = run_cli(
        "submit", str(EXAMPLE), "--wait",
        "-i", f"dir={STACK_DIR}", "-i", f"project={project}", "-i", f"db-port={free_port()}", *inputs,
        server=url, timeout=RUN_TIMEOUT,
    )
    return cli.returncode, cli.stdout + cli.stderr


def test_healthy_stack_is_deployed_one_server_at_a_time(stack, project: str) -> None:  # type: ignore[no-untyped-def]
    url, db, webs = stack
    code, output = _submit(url, project)
    assert code == 0, output
    with Client(url) as client:
        run = client.get(output.splitlines()[0])
    assert run.succeeded and run.compensations == [], run.error
    assert _containers(project) == {
        f"{project}-db": "running", **{f"{project}-web-{name}": "running" for name in webs}
    }
    jobs = {(j.id, j.instance): j for j in run.jobs}
    assert jobs[("db", None)].outputs["agent"] == db
    first, second = (jobs[("web", name)] for name in webs)
    assert first.outputs["status"] == 200 and second.outputs["status"] == 200
    # One server at a time: the second began after the first had finished, and after the database.
    assert first.finished_at is not None and second.started_at is not None
    assert first.finished_at <= second.started_at
    assert jobs[("db", None)].finished_at <= first.started_at  # type: ignore[operator]


def test_failed_health_check_rolls_back_in_reverse_order(stack, project: str) -> None:  # type: ignore[no-untyped-def]
    url, db, webs = stack
    # Without its leading / (the template adds it: an input never changes the host).
    code, output = _submit(url, project, "-i", "health-path=missing")
    assert code == 1, output
    assert "compensations (in the order they ran):" in output
    with Client(url) as client:
        run = client.get(output.splitlines()[0])
    assert run.status == "failed"
    first = webs[0]
    assert run.error is not None
    why = f"job web failed on 1 of 2 servers ({first}): step web/health#{first} failed after 3 attempts"
    assert run.error.startswith(why), run.error
    assert "/missing returned 404, expected 200" in run.error
    # The rollout stopped at the first server; the second was never touched.
    jobs = {(j.id, j.instance): j for j in run.jobs}
    assert jobs[("web", first)].status == "failure" and jobs[("web", webs[1])].status == "cancelled"
    assert [(c.job, c.instance, c.id, c.status, c.agent) for c in run.compensations] == [
        ("web", first, "up.compensate", "success", first),
        ("db", None, "up.compensate", "success", db),
    ]
    assert _containers(project) == {}
