"""Client, AsyncClient and the CLI against a real `waterflow server` process and a real agent."""

from __future__ import annotations

import json
import textwrap
import time
import uuid

import pytest

from waterflow_sdk import AsyncClient, Client, RunTimeoutError, WaterflowAPIError
from waterflow_testing import unique_name


def workflow(group: str, name: str = "sdk-hello") -> str:
    return textwrap.dedent(
        f"""
        name: {name}
        inputs:
          who: {{type: string, default: world}}
          seconds: {{type: number, default: 0}}
        jobs:
          greet:
            runs-on: {group}
            steps:
              - id: say
                uses: exec/shell
                with:
                  command: |
                    echo "hello, $<< inputs.who >>"
                    echo "greeting=hello, $<< inputs.who >>" >> "$WATERFLOW_OUTPUT"
                    sleep "$<< inputs.seconds >>"
        """
    ).lstrip()


@pytest.fixture
def stack(start_server, start_agent):  # type: ignore[no-untyped-def]
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    return start_server(), group


def test_client_round_trip(stack) -> None:  # type: ignore[no-untyped-def]
    server, group = stack
    with Client(server.url) as client:
        assert client.validate(workflow(group)) == []
        problems = client.validate("name: x\njobs: {a: {runs-on: g, steps: [{uses: nope/nope}]}}\n")
        assert problems and "nope/nope" in problems[0].message

        ref = client.submit(workflow(group), inputs={"who": "sdk"})
        assert ref.created
        run = client.wait(ref.id, timeout=120, poll=0.2)
        assert run.succeeded and run.done
        step = run.jobs[0].steps[0]
        assert step.outputs["greeting"] == "hello, sdk"
        assert "hello, sdk" in next(iter(client.logs(ref.id)))
        assert any(str(e).endswith("hello, sdk") for e in client.log_entries(ref.id, follow=True))

        again = client.submit(workflow(group), id=ref.id)
        assert not again.created and again.run_id == run.run_id

        with pytest.raises(WaterflowAPIError) as info:
            client.submit(workflow(group), inputs={"seconds": "soon"})
        assert info.value.status == 422 and info.value.errors[0].path == "inputs.seconds"
        with pytest.raises(WaterflowAPIError) as missing:
            client.get("no-such-run")
        assert missing.value.status == 404 and missing.value.code == "not_found"

        page = client.list_runs(name="sdk-hello", page_size=10)
        assert any(r.id == ref.id for r in page.runs)
        assert ref.id in {r.id for r in client.iter_runs("succeeded", name="sdk-hello", page_size=2)}
        assert client.health()["status"] == "ok"
        assert any(node.type == "exec/shell" for node in client.nodes())
        assert any(group in agent.groups and agent.alive for agent in client.agents())
        assert 'route="/v1/workflows/{id}"' in client.metrics()

        entries = list(client.follow_logs(ref.id))  # a finished run: its entries, then the end
        assert "hello, sdk" in [entry.line for entry in entries if entry.kind == "log"]
        assert (entries[-1].kind, entries[-1].status) == ("step", "success")


def test_wait_timeout_and_cancel(stack) -> None:  # type: ignore[no-untyped-def]
    server, group = stack
    with Client(server.url) as client:
        ref = client.submit(workflow(group), inputs={"seconds": 600}, id=f"slow-{uuid.uuid4().hex[:6]}")
        with pytest.raises(RunTimeoutError):
            client.wait(ref.id, timeout=0.5, poll=0.1)
        client.cancel(ref.id)
        assert client.wait(ref.id, timeout=120, poll=0.2).status == "cancelled"


async def test_async_client(stack) -> None:  # type: ignore[no-untyped-def]
    server, group = stack
    async with AsyncClient(server.url) as client:
        assert await client.validate(workflow(group)) == []
        ref = await client.submit(workflow(group), inputs={"who": "async"})
        lines = [str(entry) async for entry in client.follow_logs(ref.id)]
        assert any(line.endswith("hello, async") for line in lines)
        assert ref.id in [r.id async for r in client.iter_runs(name="sdk-hello")]
        assert "waterflow_runs" in await client.metrics()
        run = await client.wait(ref.id, timeout=60, poll=0.2)
        assert run.succeeded
        assert run.jobs[0].steps[0].outputs["greeting"] == "hello, async"


def test_signal_answers_an_approval_gate(stack) -> None:  # type: ignore[no-untyped-def]
    server, group = stack
    gated = textwrap.dedent(
        f"""
        name: sdk-gate
        jobs:
          release:
            runs-on: {group}
            steps:
              - id: go
                uses: flow/approval
                with:
                  inputs:
                    ticket: {{type: string, required: true}}
              - id: after
                uses: exec/shell
                with: {{command: 'echo "ticket $<< steps.go.outputs.data.ticket >>"'}}
        """
    ).lstrip()
    with Client(server.url) as client:
        ref = client.submit(gated)
        with pytest.raises(WaterflowAPIError) as wrong:
            client.signal(ref.id, "deploy", {"ticket": "T-1"})
        assert wrong.value.status == 409
        # The gate must be waiting before it takes an answer: retry the 409 until it is.
        deadline = time.monotonic() + 60
        while True:
            try:
                accepted = client.signal(ref.id, "go", {"ticket": "T-1"})
                break
            except WaterflowAPIError as err:
                if err.status != 409 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert accepted.signal == "go" and accepted.steps == ["release/go"]
        run = client.wait(ref.id, timeout=120, poll=0.2)
        assert run.succeeded
        assert "ticket T-1" in [entry.line for entry in client.log_entries(ref.id)]


def test_cli_submit_wait_status_logs(stack, waterflow_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server, group = stack
    path = tmp_path / "hello.yaml"
    path.write_text(workflow(group))

    done = waterflow_cli("submit", str(path), "-i", "who=cli", "--wait", server=server.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    run_id = lines[0]
    assert "greeting = hello, cli" in done.stdout
    assert lines[-1] == f"run {run_id} succeeded"

    status = waterflow_cli("status", run_id, "--output", "json", server=server.url)
    assert json.loads(status.stdout)["status"] == "succeeded"
    logs = waterflow_cli("logs", run_id, server=server.url)
    assert "[greet/say] hello, cli" in logs.stdout.splitlines()

    failing = tmp_path / "fail.yaml"
    failing.write_text(
        f"name: fails\njobs:\n  j:\n    runs-on: {group}\n    steps:\n      - id: boom\n"
        "        uses: exec/shell\n        with: {command: 'exit 4'}\n"
    )
    failed = waterflow_cli("submit", str(failing), "--wait", "--output", "json", server=server.url)
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["status"] == "failed"
    assert "Traceback" not in failed.stderr
