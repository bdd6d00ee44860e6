"""Server group providers: ``agents`` against a real registry, ``inventory`` from real files (ADR 0032)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.worker import Worker

from waterflow_core.agent_registry import AgentInfo, AgentRegistryWorkflow, announce, personal_queue, withdraw
from waterflow_core.interpreter.servers import live_servers
from waterflow_core.inventory import InventoryError, InventoryServerGroupProvider, parse_inventory
from waterflow_core.providers import AgentsServerGroupProvider
from waterflow_core.temporal import sandboxed_runner
from waterflow_testing import eventually

GOOD = """\
groups:
  web: [web-1, web-2]
  db:
    - db-1
servers:
  web-1:
    vars: {region: eu-west, tier: '1'}
"""


@pytest.fixture
async def two_agents(temporal_client: Client) -> AsyncIterator[tuple[str, str, str]]:
    """Two live agents (registration workflows served in-process) in a fresh group: (group, a, b)."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    names = [f"agent-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    workers = [
        Worker(
            temporal_client,
            task_queue=personal_queue(n),
            workflows=[AgentRegistryWorkflow],
            workflow_runner=sandboxed_runner(),
        )
        for n in names
    ]
    async with workers[0], workers[1]:
        infos = [AgentInfo(name=n, groups=[group, "shared"], instance=n, heartbeat_interval_seconds=30) for n in names]
        for info in infos:
            await announce(temporal_client, info)
        yield group, names[0], names[1]
        for info in infos:
            await withdraw(temporal_client, info.name, info.instance)


async def test_agents_provider_lists_the_live_agents_of_a_group(
    temporal_client: Client, two_agents: tuple[str, str, str]
) -> None:
    group, a, b = two_agents
    provider = AgentsServerGroupProvider(client=temporal_client)
    servers = await eventually(lambda: provider.servers(group), lambda s: len(s) == 2)
    assert sorted(s["name"] for s in servers) == sorted([a, b])
    assert all(group in s["groups"] for s in servers)
    assert group in await provider.groups()
    assert await provider.servers(f"none-{uuid.uuid4().hex[:6]}") == []


async def test_agents_provider_forgets_a_withdrawn_agent(
    temporal_client: Client, two_agents: tuple[str, str, str]
) -> None:
    group, a, b = two_agents
    provider = AgentsServerGroupProvider(client=temporal_client)
    await eventually(lambda: provider.servers(group), lambda s: len(s) == 2)
    await withdraw(temporal_client, a, a)
    servers = await eventually(lambda: provider.servers(group), lambda s: len(s) == 1)
    assert [s["name"] for s in servers] == [b]


async def test_each_server_keeps_only_inventory_servers_with_a_live_agent(
    temporal_client: Client, two_agents: tuple[str, str, str], tmp_path: Path
) -> None:
    group, a, b = two_agents
    inventory = tmp_path / "inventory.yaml"
    # b is live but not listed; ghost is listed but has no agent; a is both.
    inventory.write_text(f"groups:\n  edge: [{a}, ghost-{a}]\n  other: [{b}]\n")
    provider = InventoryServerGroupProvider({"path": inventory}, client=temporal_client)
    assert [s["name"] for s in await provider.servers("edge")] == [a, f"ghost-{a}"]
    assert await eventually(lambda: live_servers(provider, temporal_client, "edge"), lambda s: s == [a]) == [a]
    assert await live_servers(provider, temporal_client, "missing-group") == []
    agents = AgentsServerGroupProvider(client=temporal_client)
    # The agents provider's servers are live by definition: no second look at the registry.
    assert sorted(await eventually(lambda: live_servers(agents, None, group), lambda s: len(s) == 2)) == sorted([a, b])


def test_inventory_parses_groups_and_vars() -> None:
    inventory = parse_inventory(GOOD, source="inv.yaml")
    assert inventory.groups == {"web": ["web-1", "web-2"], "db": ["db-1"]}
    assert inventory.servers["web-1"].vars == {"region": "eu-west", "tier": "1"}
    assert inventory.servers["db-1"].vars == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "1:1: an inventory is a mapping with a 'groups' key"),
        ("servers: {}\n", "missing key 'groups'"),
        ("groups: [a]\n", "1:9: groups: expected a mapping"),
        ("groups:\n  web: web-1\n", "2:8: groups.web: expected a list of server names"),
        ("groups:\n  web: [a, a]\n", "2:12: groups.web[1]: server 'a' is listed twice"),
        ("groups:\n  web: ['a b']\n", "2:9: groups.web[0]: a server name is text without whitespace or '/'"),
        ("groups:\n  web: [a/b]\n", "2:9: groups.web[0]: a server name"),
        ("groups:\n  web: [[a]]\n", "2:9: groups.web[0]: a server name"),
        ("groups:\n  'w b': [a]\n", '2:3: groups["w b"]: a group name must not'),
        ("groups: {web: [a]}\nhosts: {}\n", "2:1: hosts: unknown key 'hosts' (expected groups or servers)"),
        ("groups: {web: [a]}\nservers: {b: {}}\n", "2:11: servers.b: server 'b' is in no group"),
        ("groups: {web: [a]}\nservers: {a: {var: {}}}\n", "2:15: servers.a.var: unknown key 'var' (expected vars)"),
        ("groups: {web: [a]}\nservers: {a: {vars: [x]}}\n", "2:21: servers.a.vars: expected a mapping"),
        ("groups: {web: [a]}\ngroups: {db: [b]}\n", "2:1"),  # duplicate key, from the strict loader
        ("groups: &x {web: [a]}\n", "anchor"),
        ("groups:\n  web: [a\n", "inv.yaml:"),  # YAML syntax error, still placed
    ],
)
def test_inventory_errors_are_placed(text: str, expected: str) -> None:
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, source="inv.yaml")
    assert expected in str(caught.value), str(caught.value)
    assert str(caught.value).startswith("inv.yaml:")


def test_inventory_reports_every_problem_at_once() -> None:
    with pytest.raises(InventoryError) as caught:
        parse_inventory("groups:\n  web: [a, a]\n  db: b\nextra: 1\n", source="inv.yaml")
    assert [(e.line, e.column) for e in caught.value.errors] == [(2, 12), (3, 7), (4, 1)]


async def test_inventory_provider_reads_the_file_and_reloads_changes(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(GOOD)
    provider = InventoryServerGroupProvider({"path": str(path)})
    assert await provider.groups() == ["db", "web"]
    assert await provider.servers("web") == [
        {"name": "web-1", "vars": {"region": "eu-west", "tier": "1"}},
        {"name": "web-2", "vars": {}},
    ]
    assert await provider.servers("nope") == []
    path.write_text("groups:\n  web: [web-3]\n")
    assert [s["name"] for s in await provider.servers("web")] == ["web-3"]
    # A broken edit is logged; the last valid inventory stays in use.
    path.write_text("groups:\n  web: web-4\n")
    assert [s["name"] for s in await provider.servers("web")] == ["web-3"]


def test_inventory_provider_refuses_a_bad_file_at_construction(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"cannot read the inventory"):
        InventoryServerGroupProvider({"path": tmp_path / "missing.yaml"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n  web: 3\n")
    with pytest.raises(InventoryError, match=r"bad\.yaml:2:8: groups\.web: expected a list"):
        InventoryServerGroupProvider({"path": bad})
    with pytest.raises(ValidationError):
        InventoryServerGroupProvider({})
