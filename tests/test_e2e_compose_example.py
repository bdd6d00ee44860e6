"""examples/compose-health.yaml, as is, through `waterflow dev` (Temporal, API, local agent) and real Docker.

The example's compose project runs busybox httpd on the host network; the run brings it up healthy,
checks it with http/request, reads the page with docker/exec and brings it down in an
`if: always()` step. Docker and compose are required: without them the test skips, except in CI
(`CI` set), where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow_sdk import Client
from waterflow_testing.docker import skip_or_fail
from waterflow_testing.processes import free_port
from waterflow_testing.server import run_cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "compose-health.yaml"
COMPOSE_FILE = REPO / "examples" / "compose-health" / "docker-compose.yml"
READY_TIMEOUT = 120.0
RUN_TIMEOUT = 300.0


def _project_containers(project: str) -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return listed.stdout.split()


@pytest.fixture
def project(docker_test_image: str) -> Iterator[str]:
    """A unique compose project name; whatever the run leaves of it is removed afterwards."""
    if shutil.which("docker-compose") is None and subprocess.run(
        ["docker", "compose", "version"], capture_output=True, check=False
    ).returncode:
        skip_or_fail("neither `docker compose` nor `docker-compose` is installed")
    name = f"wfe2e{uuid.uuid4().hex[:10]}"
    yield name
    leftovers = _project_containers(name)
    if leftovers:
        subprocess.run(["docker", "rm", "-f", "-v", *leftovers], capture_output=True, check=False)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[str]:
    """`waterflow dev` whose local agent may read the examples (WATERFLOW_FILE_ROOTS); yields its URL."""
    port = free_port()
    log = tmp_path / "dev.log"
    command = [
        sys.executable, "-m", "waterflow_sdk", "dev", "--data-dir", str(tmp_path / "data"), "--port", str(port),
        "--temporal-port", str(free_port()), "--ui-port", str(free_port()),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WATERFLOW_FILE_ROOTS": str(REPO / "examples")}
    env.pop("WATERFLOW_TEMPORAL_ADDRESS", None)
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not re.search(r"^ready\b", log.read_text(errors="replace"), re.M):
            assert process.poll() is None, f"waterflow dev exited:\n{log.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"waterflow dev not ready:\n{log.read_text(errors='replace')}"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_compose_health_example(dev: str, project: str) -> None:
    port = free_port()
    submitted = run_cli(
        "submit", str(EXAMPLE), "--wait",
        "-i", f"file={COMPOSE_FILE}", "-i", f"port={port}", "-i", f"project={project}",
        server=dev, timeout=RUN_TIMEOUT,
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    run_id = submitted.stdout.splitlines()[0]
    with Client(dev) as client:
        run = client.get(run_id)
    assert run.succeeded, run.error
    steps = {step.id: step for _, step in run.steps()}
    assert [s.status for s in steps.values()] == ["success"] * 4, {s.id: s.error for s in steps.values()}

    up = steps["up"].outputs
    [web] = up["services"]["web"]
    assert up["project"] == project and up["files"] == [str(COMPOSE_FILE)] and up["compose"] in (
        "docker-compose", "docker compose"
    )
    assert web["state"] == "running" and web["health"] == "healthy"
    assert web["name"] in (f"{project}_web_1", f"{project}-web-1")

    check = steps["check"].outputs
    assert check["status"] == 200 and "healthy: served by busybox httpd" in check["body"]

    inside = steps["inside"].outputs
    assert inside["exit-code"] == 0 and inside["stdout"] == check["body"] and inside["container"] == web["name"]

    assert steps["down"].outputs["removed"] == [web["name"]]
    assert run.jobs[0].outputs == {"container": web["name"], "health": "healthy", "status": 200}
    assert _project_containers(project) == []
