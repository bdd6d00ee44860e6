"""NodeRegistry: lookup, duplicates, catalog, static `with:` checks, generations — real plugins."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from waterflow_core import Node, NodeContext
from waterflow_core.errors import ErrorCode
from waterflow_core.plugins import PluginError, PluginInfo, PluginManager
from waterflow_core.registry import MAX_WITH_PROBLEMS, NodeEntry, NodeRegistry, UnknownNodeError

Install = Callable[..., str]  # the `install` fixture of conftest.py


def plugin_source(*nodes: tuple[str, str], greeting: str = "hello", gated: bool = False) -> str:
    classes = []
    for i, (node_type, version) in enumerate(nodes):
        wait = "await ctx.facts['gate'].wait()" if gated else "pass"
        classes.append(f'''
class Node{i}(Node):
    type = "{node_type}"
    version = "{version}"
    description = "node {i}"
    class Inputs(BaseModel):
        name: str
    class Outputs(BaseModel):
        greeting: str
    async def run(self, ctx, inputs):
        {wait}
        return self.Outputs(greeting="{greeting} " + inputs.name)
''')
    names = ", ".join(f"Node{i}" for i in range(len(nodes)))
    return (
        "from pydantic import BaseModel\nfrom waterflow_core import Node, hookimpl\n"
        + "".join(classes)
        + f"\n@hookimpl\ndef waterflow_register_nodes():\n    return [{names}]\n"
    )


def registry(*names: str, strict: bool = True) -> NodeRegistry:
    return NodeRegistry.from_plugins(PluginManager(allowlist=names, strict=strict))


async def greet(cls: type[Node], name: str, **facts: object) -> str:
    out = await cls().run(NodeContext(facts=facts), cls.Inputs(name=name))
    return out.greeting  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------ lookup


def test_get_by_type_and_major(install: Install) -> None:
    install(plugin_source(("test-reg/multi", "1.4.0"), ("test-reg/multi", "2.0.1")), name="multi")
    reg = registry("multi")
    assert reg.get("test-reg/multi").version == "2.0.1"  # no major: highest installed
    assert reg.get("test-reg/multi@1").version == "1.4.0"
    assert reg.get("test-reg/multi@2").version == "2.0.1"
    assert "test-reg/multi@1" in reg and "test-reg/multi@3" not in reg
    assert reg.entry("test-reg/multi").plugin.distribution == "multi"
    assert len(reg) == 2


def test_unknown_type_major_and_syntax(install: Install) -> None:
    install(plugin_source(("test-reg/known", "1.0.0")), name="known")
    reg = registry("known")
    with pytest.raises(UnknownNodeError, match=r"unknown node type 'test-reg/nope'.*test-reg/known") as caught:
        reg.get("test-reg/nope")
    # Handlers match the code (it crosses processes as the ApplicationError type), not the text.
    assert caught.value.code == ErrorCode.UNKNOWN_NODE == "WaterflowUnknownNode"
    with pytest.raises(UnknownNodeError, match=r"no major version 7.*@1"):
        reg.get("test-reg/known@7")
    with pytest.raises(UnknownNodeError, match="invalid node reference"):
        reg.get("test-reg/known@v1")


def test_duplicate_type_major_names_both_distributions(install: Install) -> None:
    install(plugin_source(("test-reg/dup", "1.0.0")), name="dup-a", dist="acme-first")
    install(plugin_source(("test-reg/dup", "1.2.0")), name="dup-b", dist="acme-second")
    with pytest.raises(PluginError, match=r"test-reg/dup@1 is provided twice.*acme-first.*acme-second"):
        registry("dup-a", "dup-b")
    # Lenient (agent, server): neither is served, the problem is recorded and shown on lookup.
    lenient = registry("dup-a", "dup-b", strict=False)
    with pytest.raises(UnknownNodeError, match="provided twice"):
        lenient.get("test-reg/dup")


def test_different_majors_from_different_distributions_coexist(install: Install) -> None:
    install(plugin_source(("test-reg/split", "1.0.0")), name="split-a")
    install(plugin_source(("test-reg/split", "2.0.0")), name="split-b")
    reg = registry("split-a", "split-b")
    assert reg.entry("test-reg/split@1").plugin.name == "split-a"
    assert reg.entry("test-reg/split@2").plugin.name == "split-b"


def test_invalid_node_class_is_refused(install: Install) -> None:
    install(plugin_source(("Not A Type", "1.0.0")), name="badtype", dist="bad-dist")
    with pytest.raises(PluginError, match=r"bad-dist.*must look like 'group/name'"):
        registry("badtype")


# ------------------------------------------------------------------------------------ catalog


def test_catalog_publishes_schemas(install: Install) -> None:
    install(plugin_source(("test-reg/cat", "1.2.3")), name="cat")
    (item,) = registry("cat").catalog()
    assert set(item) == {"type", "version", "description", "inputs_schema", "outputs_schema", "workflow_side"}
    shown = (item["type"], item["version"], item["description"], item["workflow_side"])
    assert shown == ("test-reg/cat", "1.2.3", "node 0", False)
    assert item["inputs_schema"]["required"] == ["name"]
    assert item["inputs_schema"]["additionalProperties"] is False  # unknown with: keys are errors
    assert "greeting" in item["outputs_schema"]["properties"]


# ------------------------------------------------------------------------------ check_with


class Nested(BaseModel):
    port: int


class Tls(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verify: bool
    ca_file: str = Field("", alias="ca-file")


class Checked(Node):
    type = "test-reg/checked"

    class Inputs(BaseModel):
        model_config = ConfigDict(populate_by_name=True)

        url: str
        count: int = 1
        ports: list[int] = []
        mode: Literal["fast", "safe"] = "safe"
        either: int | list[int] = 0
        target: Nested | None = None
        tls: list[Tls] = []
        max_time: float = Field(10.0, alias="max-time")

    async def run(self, ctx: NodeContext, inputs: BaseModel) -> BaseModel:
        return self.Outputs()


INFO = PluginInfo("test", "waterflow.nodes", "tests", "tests", "0")


@pytest.fixture
def checked() -> NodeRegistry:
    return NodeRegistry([NodeEntry(Checked, INFO)])


PYDANTIC_WORDING = ("Input should", "Field required", "Extra inputs", "not permitted", "Value error")


def test_check_with_literal_problems(checked: NodeRegistry) -> None:
    problems = checked.check_with(
        "test-reg/checked",
        {
            "count": "many",
            "ports": [80, "x"],
            "mode": "slow",
            "either": "y",
            "target": {"port": "p"},
            "colour": "red",
        },
    )
    found = {problem.path: (problem.on, problem.message) for problem in problems}
    assert found == {
        ("url",): ("key", "missing required input 'url' of test-reg/checked"),
        ("count",): ("value", "input 'count' of test-reg/checked: expected an integer, got 'many'"),
        ("ports", 1): ("value", "input 'ports[1]' of test-reg/checked: expected an integer, got 'x'"),
        ("mode",): ("value", "input 'mode' of test-reg/checked: expected one of 'fast', 'safe', got 'slow'"),
        ("either",): ("value", "input 'either' of test-reg/checked: expected an integer or a list, got 'y'"),
        ("target", "port"): ("value", "input 'target.port' of test-reg/checked: expected an integer, got 'p'"),
        ("colour",): (
            "key",
            "test-reg/checked has no input 'colour' "
            "(expected one of: count, either, max-time, mode, ports, target, tls, url)",
        ),
    }
    # Problems still unpack as (path, message) pairs.
    assert dict(problems)[("url",)] == found[("url",)][1]


def test_check_with_suggests_the_input_meant(checked: NodeRegistry) -> None:
    problems = checked.check_with("test-reg/checked", {"ulr": "u", "tls": [{"verify": "maybe", "cafile": "x"}]})
    messages = {problem.path: problem.message for problem in problems}
    assert messages == {
        ("ulr",): "test-reg/checked has no input 'ulr' (did you mean 'url'?)",
        ("url",): "missing required input 'url' of test-reg/checked",
        ("tls", 0, "cafile"): "input 'tls[0]' of test-reg/checked has no key 'cafile' (did you mean 'ca-file'?)",
        ("tls", 0, "verify"): (
            "input 'tls[0].verify' of test-reg/checked: expected a boolean (true or false), got 'maybe'"
        ),
    }
    missing = checked.check_with("test-reg/checked", {"url": "u", "target": {}, "max_time": "x"})
    assert {problem.path: problem.message for problem in missing} == {
        ("target", "port"): "missing required key 'port' in input 'target' of test-reg/checked",
        # populate_by_name accepts the field name too; its value is still checked.
        ("max_time",): "input 'max_time' of test-reg/checked: expected a number, got 'x'",
    }


def test_check_with_never_shows_pydantic_wording(checked: NodeRegistry) -> None:
    bad = {"count": {"a": 1}, "ports": "x", "mode": 3, "either": [["y"]], "target": [1], "zzz": 1}
    for problem in checked.check_with("test-reg/checked", bad):
        assert not any(phrase in problem.message for phrase in PYDANTIC_WORDING), problem


def test_check_with_caps_the_problems_of_a_huge_with(checked: NodeRegistry) -> None:
    data: dict[str, object] = {f"k{i}": "v" for i in range(100_000)}
    data["url"] = "u"
    problems = checked.check_with("test-reg/checked", data)
    assert len(problems) == MAX_WITH_PROBLEMS + 1
    assert problems[-1].path == () and problems[-1].on == "key"
    assert problems[-1].message == (
        f"{100_000 - MAX_WITH_PROBLEMS} more problems in this with: are not listed "
        f"(only the first {MAX_WITH_PROBLEMS} are)"
    )
    assert sum(len(problem.message) for problem in problems) < 10_000


def test_check_with_deep_nesting_stays_short(checked: NodeRegistry) -> None:
    deep: object = "x"
    for _ in range(60):
        deep = {"k": [deep]}
    problems = checked.check_with("test-reg/checked", {"url": "u", "target": deep, "tls": [deep], "either": [deep]})
    paths = {problem.path for problem in problems}
    assert paths == {("target", "port"), ("tls", 0, "k"), ("tls", 0, "verify"), ("either",), ("either", 0)}
    assert all(len(problem.message) < 200 for problem in problems)


def test_unknown_node_type_suggests_the_closest(checked: NodeRegistry) -> None:
    [problem] = checked.check_with("test-reg/chekced", {})
    assert (problem.path, problem.on) == ((), "uses")
    assert problem.message == (
        "unknown node type 'test-reg/chekced' (did you mean 'test-reg/checked'? installed: test-reg/checked)"
    )


def test_check_with_accepts_expressions_anywhere(checked: NodeRegistry) -> None:
    assert checked.check_with(
        "test-reg/checked",
        {
            "url": "$<< vars.base >>/health",
            "count": "$<< inputs.n >>",
            "ports": ["$<< matrix.port >>", 443],
            "mode": "$<< inputs.mode >>",
            "either": "$<< fromJSON(inputs.list) >>",
            "target": "$<< fromJSON(inputs.target) >>",
            "max-time": "$<< inputs.t >>",
        },
    ) == []
    assert checked.check_with("test-reg/checked", "$<< fromJSON(inputs.with) >>") == []


def test_check_with_still_reports_missing_and_unknown_keys_next_to_expressions(checked: NodeRegistry) -> None:
    problems = checked.check_with("test-reg/checked", {"count": "$<< inputs.n >>", "typo": "$<< inputs.x >>"})
    assert sorted(path for path, _ in problems) == [("typo",), ("url",)]


def test_check_with_yaml_strings_are_coerced(checked: NodeRegistry) -> None:
    # Every YAML scalar is a string until the schema types it.
    assert checked.check_with("test-reg/checked", {"url": "u", "count": "3", "ports": ["80"], "max-time": "1.5"}) == []


def test_check_with_unknown_node_and_non_mapping(checked: NodeRegistry) -> None:
    [(path, message)] = checked.check_with("test-reg/missing", {})
    assert path == () and "unknown node type" in message
    [(path, message)] = checked.check_with("test-reg/checked", ["url"])
    assert path == () and "mapping" in message


def test_check_with_real_exec_shell() -> None:
    reg = registry("shell")
    assert reg.check_with("exec/shell", {"command": "echo $<< inputs.x >>", "cwd": "$<< vars.dir >>"}) == []
    problems = dict(reg.check_with("exec/shell", {"command": "x", "shell": "fish", "output-cap": "-1"}))
    assert set(problems) == {("shell",), ("output-cap",)}


# ------------------------------------------------------------------------------ node base


def test_inputs_forbid_unknown_keys_unless_the_author_chose() -> None:
    class Lenient(Node):
        type = "test-reg/lenient"

        class Inputs(BaseModel):
            model_config = ConfigDict(extra="allow")
            a: int = 0

        async def run(self, ctx: NodeContext, inputs: BaseModel) -> BaseModel:
            return self.Outputs()

    assert Lenient.Inputs.model_validate({"zzz": 1}).model_extra == {"zzz": 1}
    assert issubclass(Checked.Inputs, BaseModel) and Checked.Inputs.__name__ == "Inputs"
    with pytest.raises(ValueError):
        Checked.Inputs.model_validate({"url": "u", "zzz": 1})


def test_context_heartbeat_is_injected_or_overridden() -> None:
    beats: list[tuple[object, ...]] = []
    NodeContext(heartbeat=lambda *d: beats.append(d)).heartbeat(1)
    NodeContext().heartbeat(2)  # default: no-op

    class Sub(NodeContext):
        def heartbeat(self, *details: object) -> None:
            beats.append(("sub", *details))

    Sub().heartbeat(3)
    assert beats == [(1,), ("sub", 3)]


# ------------------------------------------------------------------------------ generations


async def test_rebuild_sees_new_plugin_and_keeps_old_generation(install: Install) -> None:
    install(plugin_source(("test-reg/first", "1.0.0")), name="gen-first")
    gen1 = registry("gen-first", "gen-second")
    assert gen1.generation == 1 and "test-reg/second" not in gen1
    install(plugin_source(("test-reg/second", "1.0.0")), name="gen-second")
    gen2 = gen1.rebuild()
    assert gen2 is not gen1 and gen2.generation == 2
    assert "test-reg/second" in gen2 and "test-reg/second" not in gen1
    assert gen2.get("test-reg/first") is gen1.get("test-reg/first")  # unchanged package: same class


async def test_upgrade_swaps_code_while_in_flight_step_keeps_its_class(install: Install) -> None:
    module = install(plugin_source(("test-reg/up", "1.0.0"), greeting="v1", gated=True), name="up", version="1.0")
    gen1 = registry("up")
    old_cls = gen1.get("test-reg/up")
    gate = asyncio.Event()
    in_flight = asyncio.create_task(greet(old_cls, "a", gate=gate))
    await asyncio.sleep(0)

    install(plugin_source(("test-reg/up", "2.0.0"), greeting="version-two"), name="up", version="2.0", module=module)
    gen2 = gen1.rebuild()
    new_cls = gen2.get("test-reg/up")
    assert new_cls is not old_cls and new_cls.version == "2.0.0"
    assert gen1.get("test-reg/up") is old_cls  # holders of the old generation are unaffected
    assert await greet(new_cls, "b") == "version-two b"

    gate.set()
    assert await in_flight == "v1 a"


class Scripted(Node):
    type = "test-reg/scripted"
    shell_inputs = ("command",)

    class Inputs(BaseModel):
        command: str
        note: str = ""

    async def run(self, ctx: NodeContext, inputs: BaseModel) -> BaseModel:
        return self.Outputs()


def test_check_with_refuses_shell_code_places_before_any_value_is_known() -> None:
    reg = NodeRegistry([NodeEntry(Scripted, INFO)])
    refused = reg.check_with("test-reg/scripted", {"command": "printf -v $<< inputs.v >> '%s' x"})
    assert [(p.path, p.on) for p in refused] == [(("command",), "value")]
    assert refused[0].message.startswith(
        "input 'command' of test-reg/scripted: $<< inputs.v >> cannot be used as a variable name"
    )
    # Integer places depend on the value (checked on the agent); other inputs are not shell text.
    assert reg.check_with("test-reg/scripted", {"command": "echo $(( $<< inputs.v >> + 1 ))"}) == []
    assert reg.check_with("test-reg/scripted", {"command": "echo ok", "note": "printf -v $<< inputs.v >> x"}) == []
