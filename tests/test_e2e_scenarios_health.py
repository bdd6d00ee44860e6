"""Scenario 1: examples/multi-server-health-check.yaml through the real CLI on three agents.

A real HTTP server on 127.0.0.1 is every server's port and endpoint. Healthy: the run succeeds
and the CLI prints a report naming all three servers. Unhealthy: one agent's `check-port` fact
points at a closed port, so its port check fails while the two others finish; the run fails,
its error and the report naming that server and the check.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow_core.dsl import load_workflow
from waterflow_sdk import Client
from waterflow_testing import unique_name
from waterflow_testing.processes import free_port
from waterflow_testing.server import run_cli

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "multi-server-health-check.yaml"
RUN_TIMEOUT = 240.0
CHECKS = ("disk", "memory", "load", "port", "http")


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n" if self.path == "/health" else b"no such page\n"
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test's output is the CLI's."""


@pytest.fixture
def endpoint() -> Iterator[int]:
    """A real HTTP server on 127.0.0.1 (/health answers 200); yields its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _submit(server_url: str, group: str, port: int, *extra: str) -> str:
    """Submit the example with the CLI and return what it printed; checks it ran to its end."""
    cli = run_cli(
        "submit", str(EXAMPLE), *extra,
        "-i", f"group={group}", "-i", f"port={port}", "-i", f"url=http://127.0.0.1:{port}/health",
        # The shared CI machine's load says nothing about the scenario: only the port varies.
        "-i", "load-max-per-cpu=1000",
        server=server_url, timeout=RUN_TIMEOUT,
    )
    assert re.search(r"^run \S+ (succeeded|failed)", cli.stdout, re.M), cli.stdout + cli.stderr
    return cli.stdout + cli.stderr


def _report_rows(output: str) -> dict[str, list[str]]:
    """The report's table as the CLI printed it: server name -> the row's columns.

    Only lines after the report step started count: each server's summary step prints its row too.
    """
    rows: dict[str, list[str]] = {}
    lines = output.splitlines()
    start = next((n for n, line in enumerate(lines) if "[report/report]" in line), len(lines))
    for line in lines[start:]:
        match = re.match(r"^\s*(?:\[report/report\] )?\| (agent-\S+ .*)$", line)
        if match:
            columns = match.group(1).split()
            rows[columns[0]] = columns
    return rows


def test_every_input_has_a_default() -> None:
    workflow = load_workflow(EXAMPLE.read_text(), source=str(EXAMPLE))
    assert all(spec.default is not None for spec in workflow.inputs.values())
    assert workflow.inputs["group"].default == "web"


def test_three_healthy_servers(start_server, start_agent, endpoint: int) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("web")
    server = start_server()
    agents = sorted(start_agent(unique_name("agent"), [group]).name for _ in range(3))

    output = _submit(server.url, group, endpoint, "--watch")

    rows = _report_rows(output)
    assert sorted(rows) == agents, output
    for name, columns in rows.items():
        assert columns[1] == "healthy" and columns[-1] == "-", (name, output)
    assert "3 servers: 3 healthy, 0 unhealthy" in output
    run_id = output.splitlines()[0]
    with Client(server.url) as client:
        run = client.get(run_id)
    assert run.succeeded, run.error
    report = next(j for j in run.jobs if j.id == "report")
    assert report.outputs["servers"] == agents and report.outputs["status"] == ["healthy"] * 3
    assert report.outputs["unhealthy"] == "" and report.outputs["healthy"] == "3"
    instances = {j.instance: j for j in run.jobs if j.id == "check" and j.instance}
    assert sorted(instances) == agents
    for job in instances.values():
        assert job.outputs["port"] == f"127.0.0.1:{endpoint}" and job.outputs["http"] == 200
        assert job.outputs["status"] == "healthy" and re.fullmatch(r"\d+%", job.outputs["disk"])


def test_one_unhealthy_server_is_named_with_its_check(start_server, start_agent, endpoint: int) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("web")
    server = start_server()
    closed = free_port()  # nothing listens there
    names = [unique_name("agent") for _ in range(3)]
    bad = names[1]
    for name in names:
        start_agent(name, [group], args=["--fact", f"check-port={closed}"] if name == bad else [])

    output = _submit(server.url, group, endpoint, "--wait")

    rows = _report_rows(output)
    assert sorted(rows) == sorted(names), output
    assert rows[bad][1] == "unhealthy" and rows[bad][-1] == "port", rows[bad]
    assert f"127.0.0.1:{closed} fail" in " ".join(rows[bad])
    for name in names:
        if name != bad:
            assert rows[name][1] == "healthy", rows[name]
    assert f"unhealthy: {bad} (port)" in output
    run_id = output.splitlines()[0]
    with Client(server.url) as client:
        run = client.get(run_id)
    assert run.status == "failed"
    assert run.error is not None and run.error.startswith(f"job check failed on 1 of 3 servers ({bad}):"), run.error
    assert f"{bad} is unhealthy: failed port" in run.error
    instances = {j.instance: j for j in run.jobs if j.id == "check" and j.instance}
    # The others finished every check.
    assert {n: j.status for n, j in instances.items()} == {n: "failure" if n == bad else "success" for n in names}
    steps = {(step.id, job.instance): step.status for job, step in run.steps() if job.id == "check"}
    for name in names:
        assert all(steps[(check, name)] == "success" for check in CHECKS)
    report = next(j for j in run.jobs if j.id == "report")
    assert report.status == "success" and report.outputs["unhealthy"] == f"{bad} (port)"
    assert report.outputs["failed"] == ["port" if n == bad else "" for n in sorted(names)]
