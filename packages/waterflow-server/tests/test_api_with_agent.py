"""A real agent process runs the steps: results, logs, and the SSE follow stream."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from waterflow_testing import unique_name

Api = Any  # the `api` fixture of conftest.py


def greeting_workflow(group: str) -> str:
    return textwrap.dedent(
        f"""
        name: greet
        inputs:
          who: {{type: string, default: world}}
        jobs:
          hello:
            runs-on: {group}
            steps:
              - id: say
                uses: exec/shell
                with:
                  command: |
                    echo "line one"
                    echo "hello, $<< inputs.who >>"
                    echo "greeting=hello, $<< inputs.who >>" >> "$WATERFLOW_OUTPUT"
              - id: fail
                if: $<< inputs.who == 'fail' >>
                uses: exec/shell
                with: {{command: "echo broken >&2; exit 3"}}
        """
    ).lstrip()


async def sse_events(api: Api, path: str) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    event, data = "message", []
    async with api.http.stream("GET", path, params={"follow": "true"}, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line.split(":", 1)[1].strip())
            elif line == "" and data:
                events.append((event, json.loads("\n".join(data))))
                event, data = "message", []
    return events


async def test_run_on_an_agent_with_logs_and_follow(api: Api, start_agent) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    agent = start_agent(unique_name("agent"), [group])
    response = await api.http.post(
        "/v1/workflows", json={"workflow": greeting_workflow(group), "inputs": {"who": "ops"}}
    )
    assert response.status_code == 201, response.text
    ref = response.json()

    events = await sse_events(api, f"{ref['status_url']}/logs")
    assert events[-1][0] == "end"
    assert events[-1][1]["status"] == "succeeded"
    lines = [data["line"] for event, data in events if event == "log"]
    assert lines == ["line one", "hello, ops"]  # each line once, in order
    steps = [(data["step"], data["status"]) for event, data in events if event == "step"]
    assert ("hello/say", "success") in steps

    run = (await api.http.get(ref["status_url"])).json()
    assert run["status"] == "succeeded"
    say = run["jobs"][0]["steps"][0]
    assert say["outputs"]["greeting"] == "hello, ops"
    assert say["agent"] == agent.name
    assert run["jobs"][0]["steps"][1]["status"] == "skipped"

    logs = (await api.http.get(f"{ref['status_url']}/logs")).json()
    assert [e["line"] for e in logs["entries"] if e["kind"] == "log"] == ["line one", "hello, ops"]

    agents = (await api.http.get("/v1/agents")).json()
    listed = {a["name"]: a for a in agents["agents"]}
    assert group in listed[agent.name]["groups"] and listed[agent.name]["alive"]
    nodes = (await api.http.get("/v1/nodes")).json()["nodes"]
    shell = next(n for n in nodes if n["type"] == "exec/shell")
    assert agent.name in shell["agents"] and group in shell["groups"] and shell["inputs_schema"]


async def test_failed_run_reports_the_step(api: Api, start_agent) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    ref = (
        await api.http.post(
            "/v1/workflows", json={"workflow": greeting_workflow(group), "inputs": {"who": "fail"}}
        )
    ).json()
    events = await sse_events(api, f"{ref['status_url']}/logs")
    assert events[-1] == ("end", {"id": ref["id"], "status": "failed", "error": events[-1][1]["error"]})
    assert "fail" in events[-1][1]["error"]
    run = (await api.http.get(ref["status_url"])).json()
    assert run["status"] == "failed" and run["temporal_status"] == "Failed"
    failed = run["jobs"][0]["steps"][1]
    assert failed["status"] == "failure" and failed["error"]
