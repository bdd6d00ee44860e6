"""Issue 10, the CLI: what `waterflow` prints against a real server, agent and Temporal.

Escape sequences a step prints (OSC 52 clipboard writes, clear-screen) never reach the terminal
in text output but stay exact in JSON/YAML; `status` shows a running step's agent and attempt
(read from its pending activity) and what a waiting approval gate waits for; `list` filters by
start time; `agents list|show`; every output format; errors printed once, like a compiler, with
the `-i` flag named and the documented exit statuses. Every command runs as a real subprocess.
"""

from __future__ import annotations

import json
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from waterflow_testing import unique_name

ESCAPES = """
name: escapes
jobs:
  noisy:
    runs-on: GROUP
    steps:
      - id: shout
        uses: exec/shell
        with:
          command: |
            printf '\\033]52;c;b3duZWQ=\\007\\033[2J\\033[3Jpwned\\n'
            printf 'bad\\033]0;hacked\\007news\\n' >&2
            exit 3
"""

PAYLOAD = "\x1b]52;c;b3duZWQ=\x07\x1b[2J\x1b[3Jpwned"
SHOWN = "\\x1b]52;c;b3duZWQ=\\x07\\x1b[2J\\x1b[3Jpwned"

LONG_MESSAGE = "Release the new build to production? " + "Check the dashboards and the error budget first. " * 4

BUSY = f"""
name: busy-and-gated
inputs:
  count: {{type: number, required: true}}
jobs:
  work:
    runs-on: GROUP
    steps:
      - id: sleeper
        uses: exec/shell
        with: {{command: 'echo started; sleep 120'}}
  gate:
    runs-on: GROUP
    steps:
      - id: go
        uses: flow/approval
        with:
          timeout: 1h
          message: {LONG_MESSAGE.strip()}
          inputs:
            ticket: {{type: string, required: true}}
"""


def run_json(url: str, run_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/v1/workflows/{run_id}", timeout=30).json())


def wait_for(probe: Any, what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f}s"
        time.sleep(0.3)


def test_escape_sequences_from_a_step_never_reach_the_terminal(  # type: ignore[no-untyped-def]
    start_server, start_agent, waterflow_cli, tmp_path: Path
) -> None:
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    source = tmp_path / "escapes.yaml"
    source.write_text(ESCAPES.replace("GROUP", group))

    waited = waterflow_cli("submit", "--wait", "--poll", "0.2", str(source), server=server.url, timeout=240)
    assert waited.returncode == 1, waited.stderr
    run_id = waited.stdout.splitlines()[0].strip()
    assert SHOWN in waited.stdout, waited.stdout
    assert "bad\\x1b]0;hacked\\x07news" in waited.stdout + waited.stderr

    status = waterflow_cli("status", "--logs", run_id, server=server.url)
    logs = waterflow_cli("logs", run_id, server=server.url)
    for shown in (waited, status, logs):
        assert shown.returncode in (0, 1), shown.stderr
        printed = shown.stdout + shown.stderr
        assert "\x1b" not in printed and "\x07" not in printed, printed
    assert SHOWN in status.stdout and SHOWN in logs.stdout

    # JSON and YAML keep the value exact: a program reads what the step printed.
    as_json = waterflow_cli("logs", "-o", "json", run_id, server=server.url)
    lines = [json.loads(line)["line"] for line in as_json.stdout.splitlines()]
    assert PAYLOAD in lines, lines
    as_yaml = waterflow_cli("logs", "-o", "yaml", run_id, server=server.url)
    assert PAYLOAD in [entry["line"] for entry in yaml.safe_load_all(as_yaml.stdout)]
    assert "\x1b" not in as_yaml.stdout  # YAML escapes it (\e) in the document itself
    detail = json.loads(waterflow_cli("status", "-o", "json", run_id, server=server.url).stdout)
    [step] = detail["jobs"][0]["steps"]
    assert PAYLOAD in step["log_tail"]


def test_status_list_and_agents_in_every_output(  # type: ignore[no-untyped-def]
    start_server, start_agent, waterflow_cli, tmp_path: Path
) -> None:
    group = unique_name("group")
    agent = start_agent(unique_name("agent"), [group])
    server = start_server()
    source = tmp_path / "busy.yaml"
    source.write_text(BUSY.replace("GROUP", group))
    before = datetime.now(UTC) - timedelta(seconds=5)

    submitted = waterflow_cli("submit", str(source), "-i", "count=3", server=server.url)
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.strip()
    try:
        # A running step's agent and attempt come from its pending activity, not its result.
        def sleeper() -> dict[str, Any] | None:
            steps = {s["id"]: s for job in run_json(server.url, run_id)["jobs"] for s in job["steps"]}
            found = steps.get("sleeper")
            return found if found and found["status"] == "running" and found["agent"] else None

        running = wait_for(sleeper, "the sleeper running with its agent")
        assert (running["agent"], running["attempt"], running["queue"]) == (agent.name, 1, group)
        wait_for(
            lambda: any(s.get("waiting") for job in run_json(server.url, run_id)["jobs"] for s in job["steps"]),
            "the gate waiting",
        )

        status = waterflow_cli("status", run_id, server=server.url)
        assert status.returncode == 0, status.stderr
        assert f"[work/sleeper] running on {agent.name} (attempt 1)" in status.stdout, status.stdout
        assert "waiting for signal go until " in status.stdout
        assert "approvers" not in status.stdout and "fields: ticket (string, required)" in status.stdout
        assert "answer: waterflow signal <run id> go [--data JSON] [--reject]" in status.stdout
        assert max(len(line) for line in status.stdout.splitlines()) <= 120
        wrapped = status.stdout.split("message: ", 1)[1].split("fields:")[0].splitlines()
        assert len(wrapped) > 1 and " ".join(line.strip() for line in wrapped).strip() == LONG_MESSAGE.strip()

        # json and yaml: the API's document, the same fields.
        as_json = json.loads(waterflow_cli("status", "-o", "json", run_id, server=server.url).stdout)
        as_yaml = yaml.safe_load(waterflow_cli("status", "-o", "yaml", run_id, server=server.url).stdout)
        assert as_json["id"] == as_yaml["id"] == run_id and as_json["jobs"] == as_yaml["jobs"]
        assert set(as_json) == set(run_json(server.url, run_id))

        # list: start-time filters, here and in the API.
        def listed(*args: str) -> list[str]:
            result = waterflow_cli("list", "--name", "busy-and-gated", "-o", "json", *args, server=server.url)
            assert result.returncode == 0, result.stderr
            return [run["id"] for run in json.loads(result.stdout)]

        assert run_id in listed("--since", before.isoformat())
        assert run_id in listed("--since", "1h", "--until", (datetime.now(UTC) + timedelta(hours=1)).isoformat())
        assert run_id not in listed("--since", (datetime.now(UTC) + timedelta(hours=1)).isoformat())
        assert run_id not in listed("--until", "2000-01-01")
        table = waterflow_cli("list", "--name", "busy-and-gated", "-o", "table", server=server.url)
        header, *rows = table.stdout.splitlines()
        assert header.split() == ["ID", "STATUS", "NAME", "STARTED", "FINISHED"]
        assert any(row.split()[:3] == [run_id, "running", "busy-and-gated"] for row in rows)
        as_yaml_list = yaml.safe_load(waterflow_cli("list", "-o", "yaml", "--limit", "5", server=server.url).stdout)
        assert run_id in [run["id"] for run in as_yaml_list]
        wrong = waterflow_cli("list", "--since", "soon", server=server.url)
        assert wrong.returncode == 2 and "'soon' is neither a time" in wrong.stderr
        refused = httpx.get(f"{server.url}/v1/workflows", params={"since": "yesterday"}, timeout=30)
        assert refused.status_code == 400 and "since must be an RFC 3339 timestamp" in refused.json()["message"]
    finally:
        waterflow_cli("cancel", run_id, server=server.url)

    # agents list|show, in each output.
    listed_json = json.loads(waterflow_cli("agents", "list", "-o", "json", server=server.url).stdout)
    mine = next(entry for entry in listed_json if entry["name"] == agent.name)
    assert mine["groups"] == [group] and mine["alive"] is True and "exec/shell@1.0.0" in mine["nodes"]
    api_agents = httpx.get(f"{server.url}/v1/agents", timeout=30).json()["agents"]
    assert set(mine) == set(next(entry for entry in api_agents if entry["name"] == agent.name))
    text = waterflow_cli("agents", "list", "--group", group, server=server.url)
    assert text.stdout.splitlines()[0].split("\t")[:3] == [agent.name, "alive", group]
    table = waterflow_cli("agents", "list", "--group", group, "-o", "table", server=server.url)
    assert table.stdout.split()[:5] == ["NAME", "STATE", "GROUPS", "NODES", "LAST"]
    none = waterflow_cli("agents", "list", "--group", "no-such-group", server=server.url)
    assert none.returncode == 0 and none.stdout == ""
    shown = waterflow_cli("agents", "show", agent.name, server=server.url)
    assert shown.returncode == 0 and shown.stdout.startswith(f"agent {agent.name}  alive\n"), shown.stdout
    assert f"  groups    {group}" in shown.stdout and "exec/shell@1.0.0" in shown.stdout
    shown_yaml = yaml.safe_load(waterflow_cli("agents", "show", agent.name, "-o", "yaml", server=server.url).stdout)
    assert shown_yaml["name"] == agent.name and shown_yaml["groups"] == [group]
    typo = waterflow_cli("agents", "show", agent.name[:-1], server=server.url)
    assert typo.returncode == 1 and f"did you mean '{agent.name}'" in typo.stderr, typo.stderr


def test_errors_print_once_like_a_compiler_and_name_the_flag(  # type: ignore[no-untyped-def]
    start_server, waterflow_cli, tmp_path: Path
) -> None:
    server = start_server()
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        textwrap.dedent(
            """
            name: broken
            jobs:
              a:
                runs-on: nowhere
                steps:
                  - uses: exec/shell
                    timeout: soon
                    with: {command: echo}
            """
        ).lstrip()
    )
    refused = waterflow_cli("submit", str(broken), server=server.url)
    assert refused.returncode == 1
    # Once: the place and message, the line, a caret under the column; no repeated summary.
    assert refused.stderr.splitlines() == [
        f"{broken}:7:18: jobs.a.steps[0].timeout: invalid duration 'soon': use e.g. 500ms, 30s, 5m, 1h30m or seconds",
        "    7 |         timeout: soon",
        "      |                  ^",
    ], refused.stderr

    valid = tmp_path / "valid.yaml"
    valid.write_text(BUSY.replace("GROUP", "nowhere"))
    typed = waterflow_cli("submit", str(valid), "-i", "count=abc", "-i", "extra=1", server=server.url)
    assert typed.returncode == 2, typed.stderr
    first, second = typed.stderr.splitlines()
    assert first == "-i count=abc: input 'count': expected a number, got 'abc'", typed.stderr
    assert second.startswith("-i extra=1: input 'extra': unknown input (declared inputs: "), typed.stderr
    missing = waterflow_cli("submit", str(valid), server=server.url)
    assert missing.returncode == 2
    assert missing.stderr.splitlines() == ["input 'count' is required: give it with -i count=VALUE"]

    unknown = waterflow_cli("status", "no-such-run", server=server.url)
    assert (unknown.returncode, unknown.stderr) == (1, "error: no run with id 'no-such-run' (HTTP 404)\n")
    usage = waterflow_cli("status", server=server.url)
    assert usage.returncode == 2 and "Missing argument 'ID'" in usage.stderr
