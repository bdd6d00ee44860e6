"""Scenario 3: examples/single-server-deploy.yaml through the real CLI on a real agent.

The artefacts are tar.gz files of examples/single-server-deploy/app (with their own
`www/version`) served by a real HTTP server on 127.0.0.1. Two deploys in a row: the first starts
the service, the second restarts it (the old process is gone, the new version answers). A wrong
checksum fails the download: nothing is downloaded, unpacked or started. A version that climbs
out of releases/ and an artefact member that does are refused, writing nothing outside.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import re
import shutil
import signal
import tarfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow_sdk import Client
from waterflow_testing import pid_alive, unique_name
from waterflow_testing.processes import free_port
from waterflow_testing.server import run_cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "single-server-deploy.yaml"
APP = REPO / "examples" / "single-server-deploy" / "app"
RUN_TIMEOUT = 180.0


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test's output is the CLI's."""


@pytest.fixture
def artefacts(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1: (directory, base URL)."""
    root = tmp_path / "artefacts"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def app_dir(tmp_path: Path) -> Iterator[Path]:
    """The application directory; the service a run started there is stopped afterwards."""
    directory = tmp_path / "srv-app"
    directory.mkdir()
    yield directory
    pidfile = directory / "app.pid"
    if pidfile.exists():
        pid = int(pidfile.read_text())
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _build(root: Path, tmp_path: Path, version: str) -> str:
    """app-VERSION.tar.gz of the sample application in ``root``; returns its SHA-256."""
    source = tmp_path / f"app-src-{version}"
    shutil.copytree(APP, source)
    (source / "www" / "version").write_text(f"{version}\n")
    archive = root / f"app-{version}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=".")
    return hashlib.sha256(archive.read_bytes()).hexdigest()


def _deploy(url: str, base: str, app_dir: Path, port: int, group: str, version: str, sha256: str) -> tuple[int, str]:
    cli = run_cli(
        "submit", str(EXAMPLE), "--wait",
        "-i", f"version={version}", "-i", f"artifact-url={base}/app-{version}.tar.gz", "-i", f"sha256={sha256}",
        "-i", f"dir={app_dir}", "-i", f"port={port}", "-i", f"group={group}",
        server=url, timeout=RUN_TIMEOUT,
    )
    return cli.returncode, cli.stdout + cli.stderr


def _served(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=5) as response:
        return str(response.read().decode().strip())


def test_deploy_then_redeploy_restarts_the_service(  # type: ignore[no-untyped-def]
    start_server, start_agent, artefacts: tuple[Path, str], app_dir: Path, tmp_path: Path
) -> None:
    root, base = artefacts
    group = unique_name("app")
    server = start_server()
    start_agent(unique_name("app"), [group], env={"WATERFLOW_FILE_ROOTS": str(app_dir)})
    port = free_port()

    first_sum = _build(root, tmp_path, "1.0.0")
    code, output = _deploy(server.url, base, app_dir, port, group, "1.0.0", first_sum)
    assert code == 0, output
    assert "serving version 1.0.0" in output
    with Client(server.url) as client:
        first = client.get(output.splitlines()[0])
    outputs = first.jobs[0].outputs
    assert outputs["sha256"] == first_sum and outputs["release"] == str(app_dir / "releases" / "1.0.0")
    first_pid = int(outputs["pid"])
    assert pid_alive(first_pid) and _served(port) == "1.0.0"
    assert (app_dir / "current").resolve() == app_dir / "releases" / "1.0.0"

    second_sum = _build(root, tmp_path, "1.1.0")
    code, output = _deploy(server.url, base, app_dir, port, group, "1.1.0", second_sum)
    assert code == 0, output
    assert f"stopping pid {first_pid}" in output
    with Client(server.url) as client:
        second = client.get(output.splitlines()[0])
    second_pid = int(second.jobs[0].outputs["pid"])
    assert second_pid != first_pid and not pid_alive(first_pid) and pid_alive(second_pid)
    assert _served(port) == "1.1.0"
    assert (app_dir / "current").resolve() == app_dir / "releases" / "1.1.0"
    assert int((app_dir / "app.pid").read_text()) == second_pid


def test_wrong_checksum_fails_before_anything_is_unpacked(  # type: ignore[no-untyped-def]
    start_server, start_agent, artefacts: tuple[Path, str], app_dir: Path, tmp_path: Path
) -> None:
    root, base = artefacts
    group = unique_name("app")
    server = start_server()
    start_agent(unique_name("app"), [group], env={"WATERFLOW_FILE_ROOTS": str(app_dir)})
    real = _build(root, tmp_path, "2.0.0")
    wrong = hashlib.sha256(b"not the artefact").hexdigest()
    assert wrong != real

    code, output = _deploy(server.url, base, app_dir, free_port(), group, "2.0.0", wrong)
    assert code == 1, output
    with Client(server.url) as client:
        run = client.get(output.splitlines()[0])
    assert run.status == "failed"
    assert run.error is not None
    mismatch = rf"step deploy/fetch failed: checksum mismatch .* expected sha256:{wrong}, got sha256:{real}"
    assert re.match(mismatch, run.error), run.error
    steps = {step.id: step.status for _, step in run.steps()}
    assert steps == {
        "prepare": "success", "fetch": "failure", "unpack": "skipped", "restart": "skipped",
        "verify": "skipped", "version": "skipped",
    }
    # Nothing was written, unpacked or started.
    assert sorted(p.name for p in app_dir.iterdir()) == ["downloads", "releases"]
    assert list((app_dir / "downloads").iterdir()) == [] and list((app_dir / "releases").iterdir()) == []


def test_hostile_version_and_artefact_write_nothing_outside(  # type: ignore[no-untyped-def]
    start_server, start_agent, artefacts: tuple[Path, str], app_dir: Path, tmp_path: Path
) -> None:
    root, base = artefacts
    group = unique_name("app")
    server = start_server()
    start_agent(unique_name("app"), [group], env={"WATERFLOW_FILE_ROOTS": str(app_dir)})
    outside = tmp_path / "outside"
    outside.mkdir()

    # A version that climbs out of releases/ is refused before anything is downloaded.
    good = _build(root, tmp_path, "3.0.0")
    code, output = _deploy(server.url, base, app_dir, free_port(), group, "../../outside", good)
    assert code == 1 and "version must be letters, digits, . _ -" in output, output
    assert list(outside.iterdir()) == [] and not (app_dir / "downloads").exists()

    # An artefact (checksum right) whose member climbs out: tar refuses it, nothing becomes current.
    archive = root / "app-4.0.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(APP, arcname=".")
        # From releases/4.0.0.new, three levels up is tmp_path: the member would land in outside/.
        tar.add(APP / "www" / "index.html", arcname="../../../outside/pwned")
    checksum = hashlib.sha256(archive.read_bytes()).hexdigest()
    code, output = _deploy(server.url, base, app_dir, free_port(), group, "4.0.0", checksum)
    assert code == 1 and "step deploy/unpack failed" in output, output
    assert list(outside.iterdir()) == [] and not (app_dir / "outside").exists()
    assert not (app_dir / "current").exists() and not (app_dir / "app.pid").exists()
    assert list((app_dir / "releases").iterdir()) == [app_dir / "releases" / "4.0.0.new"]
