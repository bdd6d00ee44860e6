"""The agent takes only ``server.vars`` from a step task: the rest of ``server`` is its own."""

from __future__ import annotations

from waterflow_agent.executor import _task_server_vars


def test_only_vars_come_from_the_task() -> None:
    sent = {"server": {"name": "spoofed", "groups": ["admin"], "facts": {"os": "x"}, "vars": {"role": "web"}}}
    assert _task_server_vars(sent) == {"vars": {"role": "web"}}
    own = {"name": "web-1", "groups": ["web"], "facts": {"os": "linux"}}
    # As the executor builds `server`: the agent's own keys are applied last and always win.
    assert {**_task_server_vars(sent), **own} == {**own, "vars": {"role": "web"}}


def test_anything_but_a_mapping_of_vars_is_ignored() -> None:
    assert _task_server_vars({}) == {}
    assert _task_server_vars({"server": "web-1"}) == {}
    assert _task_server_vars({"server": {"vars": ["a"]}}) == {}
    assert _task_server_vars({"server": {"name": "x"}}) == {}
