"""`waterflow nodes` and `waterflow validate --server` against a real server and a real agent.

The agent runs a node the server does not have installed (``acme/probe``, written as a real
package on the agent's PYTHONPATH): the server knows it only from the agent's announcement.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from waterflow_testing import eventually, unique_name, write_node_package

PROBE = '''
from pydantic import BaseModel, Field
from waterflow_core import Node, hookimpl


class Probe(Node):
    type = "acme/probe"
    version = "2.3.0"
    description = "Probe a TCP port on the agent's host."

    class Inputs(BaseModel):
        port: int = Field(description="The port.")

    class Outputs(BaseModel):
        open: bool

    async def run(self, ctx, inputs):
        return self.Outputs(open=False)


@hookimpl
def waterflow_register_nodes():
    return [Probe]
'''


def workflow(group: str, steps: str) -> str:
    head = f"name: catalog\njobs:\n  a:\n    runs-on: {group}\n    steps:\n"
    return head + textwrap.indent(textwrap.dedent(steps).lstrip(), " " * 6)


@pytest.fixture
def live(start_server, start_agent, tmp_path: Path) -> Any:  # type: ignore[no-untyped-def]
    """A server, and an agent in two groups that also runs the agent-only ``acme/probe``."""
    site = write_node_package(tmp_path / "site", "acme-probe", f"acme_probe_{uuid.uuid4().hex[:8]}", PROBE)
    groups = sorted([unique_name("web"), unique_name("edge")])
    agent = start_agent(unique_name("agent"), groups, pythonpath=[site])
    return start_server(), agent, groups


async def listed_nodes(waterflow_cli, server: Any, agent: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """``nodes list -o json`` once the agent's registration is visible."""

    def probe() -> list[dict[str, Any]]:
        done = waterflow_cli("nodes", "list", "-o", "json", server=server.url)
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout))

    return await eventually(probe, lambda nodes: any(agent in n["agents"] and n["type"] == "acme/probe" for n in nodes))


async def test_nodes_list_and_show_against_a_live_catalog(live, waterflow_cli) -> None:  # type: ignore[no-untyped-def]
    server, agent, groups = live
    nodes = {node["type"]: node for node in await listed_nodes(waterflow_cli, server, agent.name)}
    probe = nodes["acme/probe"]
    assert (probe["version"], probe["agents"], probe["groups"]) == ("2.3.0", [agent.name], groups)
    assert probe["inputs_schema"] is None  # only the agent has it: the server has no schema
    shell = nodes["exec/shell"]
    assert agent.name in shell["agents"] and set(groups) <= set(shell["groups"])
    assert shell["inputs_schema"]["required"] == ["command"]

    text = waterflow_cli("nodes", "list", server=server.url)
    assert text.returncode == 0, text.stderr
    header, *rows = text.stdout.splitlines()
    assert header.split() == ["TYPE", "VERSION", "AGENTS", "GROUPS", "DESCRIPTION"]
    row = next(row for row in rows if row.startswith("acme/probe "))
    assert row.split()[:4] == ["acme/probe", "2.3.0", agent.name, ",".join(groups)]
    assert row.endswith("Probe a TCP port on the agent's host.")

    shown = waterflow_cli("nodes", "show", "acme/probe", server=server.url)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:4] == [
        "acme/probe 2.3.0",
        "  Probe a TCP port on the agent's host.",
        f"agents: {agent.name}",
        f"groups: {','.join(groups)}",
    ]
    assert lines[-1].startswith("inputs: not known here: the server does not have this node installed")

    shell_text = waterflow_cli("nodes", "show", "exec/shell@1", server=server.url)
    assert shell_text.returncode == 0, shell_text.stderr
    command = next(line for line in shell_text.stdout.splitlines() if line.split()[:1] == ["command"])
    assert command.split()[1:3] == ["string", "yes"]

    typo = waterflow_cli("nodes", "show", "acme/prob", server=server.url)
    assert typo.returncode == 1
    assert typo.stderr.strip() == (
        "error: no node type 'acme/prob' is known to the server (did you mean 'acme/probe'?); "
        "`waterflow nodes list` shows them all"
    )


async def test_validate_against_the_server_knows_agent_only_nodes(  # type: ignore[no-untyped-def]
    live, waterflow_cli, tmp_path: Path
) -> None:
    server, agent, groups = live
    await listed_nodes(waterflow_cli, server, agent.name)
    good = tmp_path / "good.yaml"
    good.write_text(workflow(groups[0], "- uses: acme/probe@2\n  with: {port: 22}\n"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        workflow(
            groups[0],
            """
            - uses: acme/prob
              with: {port: 22}
            - uses: exec/shell
              with:
                comand: echo hi
            """,
        )
    )

    done = waterflow_cli("validate", "--server", server.url, str(good), str(bad))
    assert done.returncode == 1, done.stderr
    # Each problem is followed by its quoted line and a caret: those are checked offline.
    lines = [line for line in done.stdout.splitlines() if not line.startswith(" ")]
    assert "    6 |       - uses: acme/prob" in done.stdout.splitlines()
    # The known types listed depend on every agent of the namespace: only the start is fixed.
    assert lines[2].startswith(
        f"{bad}:6:15: jobs.a.steps[0].uses: unknown node type 'acme/prob' (did you mean 'acme/probe'? known: "
    )
    assert lines[:2] + lines[3:] == [
        f"{good}: ok",
        f"{good}: note: the server does not have acme/probe@2 installed: "
        "the agent that runs the step checks its with:",
        f"{bad}:9:9: jobs.a.steps[1].with.command: missing required input 'command' of exec/shell",
        f"{bad}:10:11: jobs.a.steps[1].with.comand: exec/shell has no input 'comand' (did you mean 'command'?)",
    ]

    # WATERFLOW_SERVER selects the server too; offline, the same file is only a note.
    env_done = waterflow_cli("validate", "-o", "json", str(good), server=server.url)
    assert env_done.returncode == 0, env_done.stderr
    assert json.loads(env_done.stdout) == [
        {"file": str(good), "valid": True, "errors": [], "unchecked": ["acme/probe@2"]}
    ]
    offline = waterflow_cli("validate", "--local", str(good), server=server.url)
    assert offline.returncode == 0, offline.stderr
    assert "acme/probe@2 is not installed here" in offline.stdout
