"""Issue 8: what happened to each step is visible in the API, ``status``, ``submit --wait`` and
``logs``: compensations (which ran, in what order, how they ended), each attempt's error of a
retried step, and the last lines of a cancelled step. Real server, agent, Temporal and CLI."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import httpx

from waterflow_sdk import Client
from waterflow_testing import unique_name

SAGA = """
name: visible-saga
jobs:
  provision:
    runs-on: {group}
    steps:
      - id: create-vm
        uses: exec/shell
        with: {{command: 'echo "vm=vm-42" >> "$WATERFLOW_OUTPUT"'}}
        compensate:
          uses: exec/shell
          with: {{command: 'echo "deleting $<< steps.create-vm.outputs.vm >>"'}}
      - id: open-port
        uses: exec/shell
        with: {{command: 'echo opened'}}
        compensate:
          uses: exec/shell
          with: {{command: 'echo "closing port"; echo "firewall busy" >&2; exit 4'}}
      - id: configure
        uses: exec/shell
        with: {{command: 'echo "configure breaks" >&2; exit 3'}}
"""


def test_compensations_are_visible_everywhere(start_server, start_agent, waterflow_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    agent = start_agent(unique_name("agent"), [group])
    server = start_server()
    source = tmp_path / "saga.yaml"
    source.write_text(SAGA.format(group=group))

    waited = waterflow_cli("submit", "--wait", "--poll", "0.2", str(source), server=server.url, timeout=240)
    assert waited.returncode == 1, waited.stderr
    run_id = waited.stdout.splitlines()[0].strip()
    # --wait printed each compensation as it finished, then the section in the order they ran.
    section = waited.stdout[waited.stdout.index("compensations (in the order they ran):") :]
    assert "1. [provision/open-port.compensate] FAILED on " + agent.name in section, waited.stdout
    assert "2. [provision/create-vm.compensate] ok on " + agent.name in section, waited.stdout
    assert "firewall busy" in section

    detail = httpx.get(f"{server.url}/v1/workflows/{run_id}", timeout=30).json()
    assert detail["status"] == "failed"
    compensations = detail["compensations"]
    assert [(c["job"], c["id"], c["status"]) for c in compensations] == [
        ("provision", "open-port.compensate", "failure"),
        ("provision", "create-vm.compensate", "success"),
    ]
    first, second = compensations
    assert first["agent"] == second["agent"] == agent.name
    assert "firewall busy" in first["error"] and "closing port" in first["log_tail"]
    assert second["error"] is None and second["log_tail"] == ["deleting vm-42"]
    assert first["started_at"] <= first["finished_at"] <= second["started_at"] <= second["finished_at"]

    status = waterflow_cli("status", run_id, server=server.url)
    assert status.returncode == 0, status.stderr
    section = status.stdout[status.stdout.index("compensations (in the order they ran):") :]
    lines = [line.strip() for line in section.splitlines()]
    assert lines[1] == f"1. [provision/open-port.compensate] FAILED on {agent.name}", status.stdout
    assert lines[-1] == f"2. [provision/create-vm.compensate] ok on {agent.name}", status.stdout

    logs = waterflow_cli("logs", run_id, server=server.url)
    assert logs.returncode == 0, logs.stderr
    out = logs.stdout
    assert "[provision/create-vm.compensate] deleting vm-42" in out, out
    assert "[provision/open-port.compensate] closing port" in out, out
    assert out.index("[provision/open-port.compensate] failure") < out.index(
        "[provision/create-vm.compensate] success"
    ), out

    followed = waterflow_cli("logs", "--follow", run_id, server=server.url)  # the SSE stream
    assert followed.returncode == 0, followed.stderr
    assert "[provision/create-vm.compensate] deleting vm-42" in followed.stdout, followed.stdout
    assert "[provision/open-port.compensate] failure" in followed.stdout, followed.stdout


RETRIED = """
name: visible-retries
inputs:
  counter: {{type: string, required: true}}
jobs:
  deploy:
    runs-on: {group}
    steps:
      - id: flaky
        uses: exec/shell
        retry: {{max-attempts: 3, initial-interval: 100ms, backoff: 1}}
        with:
          command: |
            n=$(( $(cat "$<< inputs.counter >>" 2>/dev/null || echo 0) + 1 ))
            echo "$n" > "$<< inputs.counter >>"
            [ "$n" -ge 3 ] || {{ echo "not yet: attempt $n" >&2; exit 1; }}
            echo "made it on attempt $n"
"""


def test_each_attempt_error_of_a_retried_step(start_server, start_agent, waterflow_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    with Client(server.url) as client:
        ref = client.submit(RETRIED.format(group=group), inputs={"counter": str(tmp_path / "n")})
        run = client.wait(ref.id, timeout=180, poll=0.2)
    assert run.succeeded, run.error
    step = run.jobs[0].steps[0]
    assert step.attempt == 3
    assert len(step.attempt_errors) == 2
    assert "not yet: attempt 1" in step.attempt_errors[0] and "not yet: attempt 2" in step.attempt_errors[1]

    detail = httpx.get(f"{server.url}/v1/workflows/{ref.id}", timeout=30).json()
    assert detail["jobs"][0]["steps"][0]["attempt_errors"] == step.attempt_errors

    status = waterflow_cli("status", ref.id, server=server.url)
    assert status.returncode == 0, status.stderr
    lines = [line.strip() for line in status.stdout.splitlines()]
    failed = [line for line in lines if line.startswith("attempt ")]
    assert len(failed) == 2, status.stdout
    assert failed[0].startswith("attempt 1 failed: ") and "not yet: attempt 1" in status.stdout


CANCELLED = """
name: visible-cancel
inputs:
  started: {{type: string, required: true}}
jobs:
  work:
    runs-on: {group}
    steps:
      - id: long
        uses: exec/shell
        with:
          command: |
            for i in 1 2 3; do echo "line $i"; done
            touch "$<< inputs.started >>"
            sleep 600
"""


def test_a_cancelled_step_keeps_its_lines(start_server, start_agent, waterflow_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    started = tmp_path / "started"
    with Client(server.url) as client:
        ref = client.submit(textwrap.dedent(CANCELLED.format(group=group)), inputs={"started": str(started)})
        deadline = time.monotonic() + 120
        while not started.exists():
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        time.sleep(0.5)  # the lines reach the agent's step log through the shell's pipe
        client.cancel(ref.id)
        run = client.wait(ref.id, timeout=120, poll=0.2)
    assert run.status == "cancelled"
    step = run.jobs[0].steps[0]
    assert step.status == "cancelled", step
    assert step.log_tail[:3] == ["line 1", "line 2", "line 3"], step.log_tail
    assert step.error and "was cancelled" in step.error

    logs = waterflow_cli("logs", ref.id, server=server.url)
    assert logs.returncode == 0, logs.stderr
    assert "[work/long] line 3" in logs.stdout, logs.stdout
    assert "[work/long] cancelled" in logs.stdout, logs.stdout
