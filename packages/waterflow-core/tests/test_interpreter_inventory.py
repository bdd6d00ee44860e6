"""Inventory variables (``server.vars.*``) and ``--limit`` on each-server jobs (issue 14).

A real Temporal and the interpreter worker; the provider lists servers with ``vars`` and the
steps run on in-process activity workers polling each server's personal queue.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from waterflow_core.dsl import load_workflow
from waterflow_core.interpreter import start_run
from waterflow_core.interpreter.servers import MAX_VARS_BYTES, listed_servers
from waterflow_core.limit import LimitError, matches, parse_limit
from waterflow_core.providers import ServerGroupProvider
from waterflow_core.runs import RunInput

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Nodes, job, server_fleet, step


class _Provider(ServerGroupProvider):
    """Groups of servers with per-server vars; its servers count as live agents."""

    name = "test-vars"
    lists_live_agents = True

    def __init__(self, groups: dict[str, list[str]], variables: dict[str, Any]) -> None:
        super().__init__({})
        self._groups = groups
        self._vars = variables

    async def servers(self, group: str) -> list[dict[str, Any]]:
        return [
            {"name": n, **({"vars": self._vars[n]} if n in self._vars else {})} for n in self._groups.get(group, [])
        ]

    async def groups(self) -> list[str]:
        return sorted(self._groups)


def _names(count: int) -> list[str]:
    prefix = f"srv-{uuid.uuid4().hex[:6]}"
    return [f"{prefix}-{n}" for n in range(1, count + 1)]


async def _run(
    client: Client, task_queue: str, provider: _Provider, servers: list[str], text: str, limit: list[str] | None = None
) -> tuple[Any, BaseException | None, Nodes]:
    async with server_fleet(client, task_queue, provider, servers) as h:
        run = RunInput.plan(load_workflow(text), {}, source=text).model_copy(update={"limit": limit})
        handle = await start_run(client, run, workflow_id=f"inv-{uuid.uuid4().hex[:10]}", task_queue=h.wf_queue)
        progress, error = await h.finish(handle)
    return progress, error, h.nodes


VARS_WORKFLOW = """
name: vars
jobs:
  deploy:
    runs-on: GROUP
    strategy: {each-server: true}
    steps:
      - id: web
        uses: test/echo
        if: server.vars.role == 'web'
        with: {role: '$<< server.vars.role >>', port: '$<< server.vars.ports[1] >>'}
      - id: any
        uses: test/echo
        with: {name: '$<< server.name >>'}
    outputs:
      role: $<< server.vars.role || 'none' >>
"""


async def test_server_vars_reach_workflow_side_expressions_and_the_step(
    temporal_client: Client, task_queue: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    web, db, bare = _names(3)
    provider = _Provider({group: [web, db, bare]}, {web: {"role": "web", "ports": [80, 443]}, db: {"role": "db"}})
    progress, error, nodes = await _run(
        temporal_client, task_queue, provider, [web, db, bare], VARS_WORKFLOW.replace("GROUP", group)
    )
    assert error is None, error
    # Workflow side: `if:` and job outputs read the instance's vars.
    assert step(progress, "deploy", "web", web).status == "success"
    assert step(progress, "deploy", "web", db).status == "skipped"
    assert step(progress, "deploy", "web", bare).status == "skipped"
    assert [job(progress, "deploy", s).outputs["role"] for s in (web, db, bare)] == ["web", "db", "none"]
    # Agent side: the task carries server.vars (and only them) for the agent to render.
    (call,) = [c for c in nodes.calls if c.activity_id.startswith("deploy/web#")]
    assert call.task.contexts["server"] == {"vars": {"role": "web", "ports": [80, 443]}}
    # A step that reads only server.name gets no vars in its task.
    bare_call = next(c for c in nodes.calls if c.activity_id == f"deploy/any#{bare}")
    assert "server" not in bare_call.task.contexts


async def test_oversized_or_non_json_vars_fail_the_job_naming_the_server(
    temporal_client: Client, task_queue: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    (big,) = _names(1)
    provider = _Provider({group: [big]}, {big: {"blob": "x" * MAX_VARS_BYTES}})
    progress, error, _ = await _run(temporal_client, task_queue, provider, [big], VARS_WORKFLOW.replace("GROUP", group))
    assert isinstance(error, ApplicationError)
    message = job(progress, "deploy").error or ""
    assert f"vars of server '{big}'" in message and f"at most {MAX_VARS_BYTES}" in message
    odd = _Provider({group: [big]}, {big: {"when": object()}})
    with pytest.raises(ApplicationError, match="not JSON"):
        await listed_servers(odd, None, group)


LIMIT_WORKFLOW = """
name: limited
jobs:
  web:
    runs-on: WEB
    strategy: {each-server: true}
    steps: [{id: up, uses: test/echo}]
  db:
    runs-on: DB
    strategy: {each-server: true}
    steps: [{id: up, uses: test/echo}]
"""


async def test_limit_keeps_matching_servers_of_every_each_server_job(temporal_client: Client, task_queue: str) -> None:
    web_group, db_group = f"web-{uuid.uuid4().hex[:6]}", f"db-{uuid.uuid4().hex[:6]}"
    web = _names(4)
    db = _names(2)
    provider = _Provider({web_group: web, db_group: db}, {})
    text = LIMIT_WORKFLOW.replace("WEB", web_group).replace("DB", db_group)
    limit = parse_limit(f"{web[0]},{web[1][:-1]}[3-4],group:{db_group[:3]}*")
    progress, error, nodes = await _run(temporal_client, task_queue, provider, web + db, text, limit)
    assert error is None, error
    ran = sorted(c.activity_id for c in nodes.calls)
    assert ran == sorted([f"web/up#{web[0]}", f"web/up#{web[2]}", f"web/up#{web[3]}"] + [f"db/up#{s}" for s in db])
    assert {j.instance for j in progress.jobs if j.id == "web" and j.instance} == {web[0], web[2], web[3]}


async def test_a_limit_matching_no_server_of_a_group_fails_that_job(temporal_client: Client, task_queue: str) -> None:
    web_group, db_group = f"web-{uuid.uuid4().hex[:6]}", f"db-{uuid.uuid4().hex[:6]}"
    web, db = _names(2), _names(1)
    provider = _Provider({web_group: web, db_group: db}, {})
    text = LIMIT_WORKFLOW.replace("WEB", web_group).replace("DB", db_group)
    progress, error, nodes = await _run(temporal_client, task_queue, provider, web + db, text, [web[1]])
    assert isinstance(error, ApplicationError)
    assert job(progress, "web").status == "success"
    assert job(progress, "db").status == "failure"
    assert job(progress, "db").error == f"job db: each-server: --limit {web[1]} matches no server of group '{db_group}'"
    assert [c.activity_id for c in nodes.calls] == [f"web/up#{web[1]}"]


def test_parse_limit_accepts_names_globs_groups_and_refuses_the_rest() -> None:
    assert parse_limit(None) is None
    assert parse_limit(" web-1 , web-[2-3],group:db,web-1") == ["web-1", "web-[2-3]", "group:db"]
    assert parse_limit(["a,b", "c"]) == ["a", "b", "c"]
    for bad, says in [
        ("web-1,,web-2", "empty pattern"),
        ("web 1", "without whitespace"),
        ("group:", "group:NAME"),
        ("a/b", "without whitespace or '/'"),
        (",".join(["x"] * 101), "at most 100"),
        ("x" * 201, "longer than 200"),
    ]:
        with pytest.raises(LimitError, match="limit") as caught:
            parse_limit(bad)
        assert says in str(caught.value), (bad, str(caught.value))
    with pytest.raises(LimitError):
        parse_limit(42)  # type: ignore[arg-type]
    groups = {"db": ["db-1"], "web": ["web-1", "web-2"]}
    assert matches(["web-[2-3]"], "web-2", groups)
    assert not matches(["web-[2-3]"], "web-1", groups)
    assert matches(["group:d*"], "db-1", groups)
    assert not matches(["group:d*"], "web-1", groups)
    assert not matches(["WEB-1"], "web-1", groups)  # names are case-sensitive
