"""What the web console's run page reads besides the progress tree: ``RunDetail.graph``.

The graph gives the DAG its ``needs`` edges and fan-out flags, and the YAML panel the source line
of each job and step (to highlight a failing step). It comes from the run's snapshot, so it is
right for a run that has not started a single job yet.
"""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from typing import Any

from waterflow_core.dsl import load_workflow
from waterflow_core.runs import RunInput
from waterflow_server.api.models import JobGraph
from waterflow_server.api.run_graph import JobGraphs, job_graph

Api = Any  # the `api` fixture of conftest.py

TEXT = textwrap.dedent(
    """\
    name: graph
    # a comment, so that lines and list indexes differ
    jobs:
      build:
        runs-on: builders
        steps:
          - uses: exec/shell
            with: {command: make}

          - id: pack
            name: Pack it
            uses: exec/shell
            with:
              command: tar
      deploy:
        name: Deploy everywhere
        runs-on: web
        needs: build
        strategy:
          each-server: true
        steps: [{id: push, uses: exec/shell, with: {command: push}}, {uses: exec/shell, with: {command: ok}}]
      report:
        runs-on: builders
        needs: [build, deploy]
        strategy:
          matrix: {fmt: [html, text]}
        steps:
          - id: step-2
            uses: exec/shell
            with: {command: report}
          - uses: exec/shell
            with: {command: mail}
    """
)


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line of ``text`` containing ``needle``."""
    found = [number for number, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(found) == 1, (needle, found)
    return found[0]


def planned(text: str, source: str | None = None) -> RunInput:
    return RunInput.plan(load_workflow(text), source=text if source is None else source)


def expected_graph(text: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "build",
            "name": "build",
            "needs": [],
            "fan_out": False,
            "line": line_of(text, "  build:"),
            "step_lines": {"step-1": line_of(text, "{command: make}") - 1, "pack": line_of(text, "id: pack")},
        },
        {
            "id": "deploy",
            "name": "Deploy everywhere",
            "needs": ["build"],
            "fan_out": True,
            "line": line_of(text, "  deploy:"),
            # A flow-style list: both steps are on the one line.
            "step_lines": {"push": line_of(text, "id: push"), "step-2": line_of(text, "id: push")},
        },
        {
            "id": "report",
            "name": "report",
            "needs": ["build", "deploy"],
            "fan_out": True,
            "line": line_of(text, "  report:"),
            # A user's own `step-2` pushes the second step's generated id to step-2-2, as the
            # interpreter names it.
            "step_lines": {"step-2": line_of(text, "id: step-2"), "step-2-2": line_of(text, "{command: mail}") - 1},
        },
    ]


def test_the_graph_has_needs_fan_outs_and_source_lines() -> None:
    graph = [entry.model_dump() for entry in job_graph(planned(TEXT))]
    assert graph == expected_graph(TEXT)


def test_lines_are_null_without_a_source_that_loads() -> None:
    for source in ("", "jobs: [unclosed", "name: other\n"):
        graph = job_graph(planned(TEXT, source=source))
        assert [(entry.id, entry.needs) for entry in graph] == [
            ("build", []),
            ("deploy", ["build"]),
            ("report", ["build", "deploy"]),
        ]
        assert all(entry.line is None and entry.step_lines == {} for entry in graph), source


def test_a_shorter_source_gives_lines_only_where_it_has_the_step() -> None:
    # A source that is not the workflow (a hand-made RunInput): lines only for what is there.
    source = "jobs:\n  build:\n    steps:\n      - uses: exec/shell\n"
    build = job_graph(planned(TEXT, source=source))[0]
    assert build.line == 2 and build.step_lines == {"step-1": 4}


def test_an_unreadable_snapshot_has_no_graph() -> None:
    run = planned(TEXT)
    broken = run.model_copy(update={"workflow": {"name": "graph", "jobs": {"a": {"steps": "no"}}}})
    assert job_graph(broken) == []


async def test_the_cache_computes_once_and_hands_out_copies() -> None:
    graphs = JobGraphs(size=2)
    run = planned(TEXT)
    first = await graphs.of(("a", "1"), run)
    first[0].needs.append("tampered")
    # Same key, another input: the cached graph answers, untouched by the caller's change.
    other = planned("name: x\njobs:\n  j:\n    runs-on: g\n    steps: [{uses: exec/shell}]\n")
    again = await graphs.of(("a", "1"), other)
    assert [entry.id for entry in again] == ["build", "deploy", "report"] and again[0].needs == []
    await graphs.of(("b", "1"), run)
    await graphs.of(("a", "1"), run)  # a is the most recently used now
    await graphs.of(("c", "1"), run)  # evicts b
    assert [entry.id for entry in await graphs.of(("a", "1"), other)] == ["build", "deploy", "report"]
    assert [entry.id for entry in await graphs.of(("b", "1"), other)] == ["j"]


async def test_run_detail_carries_the_graph(api: Api, task_queue: str) -> None:
    text = TEXT.replace("runs-on: builders", f"runs-on: {task_queue}")
    run_id = f"graph-{uuid.uuid4().hex[:10]}"
    response = await api.http.post("/v1/workflows", json={"workflow": text, "id": run_id})
    assert response.status_code == 201, response.text
    try:
        detail = (await api.http.get(f"/v1/workflows/{run_id}")).json()
        assert detail["status"] == "running"
        assert detail["graph"] == expected_graph(text)
        # The same again from the cache, and valid against the model.
        again = (await api.http.get(f"/v1/workflows/{run_id}")).json()
        assert [JobGraph.model_validate(entry).model_dump() for entry in again["graph"]] == detail["graph"]
        schema = (await api.http.get("/openapi.json")).json()["components"]["schemas"]
        assert "graph" in schema["RunDetail"]["properties"]
    finally:
        assert (await api.http.delete(f"/v1/workflows/{run_id}")).status_code == 202
    for _ in range(300):
        if (await api.http.get(f"/v1/workflows/{run_id}")).json()["status"] != "running":
            break
        await asyncio.sleep(0.1)
