"""Waterflow's dev and test machinery; never installed on agent hosts.

- :mod:`waterflow_testing.devserver`: the embedded Temporal dev server (``waterflow dev``, tests).
- :mod:`waterflow_testing.processes`: spawn, log and stop child processes the same way everywhere.
- :mod:`waterflow_testing.children`, :mod:`waterflow_testing.server`: agent and API server child
  processes of a test; :mod:`waterflow_testing.nodepkg`: node packages laid out as pip would.
- :mod:`waterflow_testing.harness`: run single steps on real agents, as the interpreter would.
- :mod:`waterflow_testing.pytest_plugin`: the opt-in fixtures (``-p waterflow_testing.pytest_plugin``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from waterflow_core.lazy import lazy_exports

if TYPE_CHECKING:
    from .children import AgentProcess, ChildProcess, pid_alive
    from .devserver import DevServer
    from .harness import StepHarness, make_step
    from .nodectx import LogRecorder, recording_context
    from .nodepkg import remove_node_package, write_node_package
    from .pytest_plugin import StartAgent, eventually, unique_name
    from .server import ServerProcess, run_cli

__all__ = [
    "AgentProcess",
    "ChildProcess",
    "DevServer",
    "LogRecorder",
    "ServerProcess",
    "StartAgent",
    "StepHarness",
    "eventually",
    "make_step",
    "pid_alive",
    "recording_context",
    "remove_node_package",
    "run_cli",
    "unique_name",
    "write_node_package",
]

_LAZY = {
    "AgentProcess": ".children",
    "ChildProcess": ".children",
    "pid_alive": ".children",
    "DevServer": ".devserver",
    "StepHarness": ".harness",
    "make_step": ".harness",
    "LogRecorder": ".nodectx",
    "recording_context": ".nodectx",
    "remove_node_package": ".nodepkg",
    "write_node_package": ".nodepkg",
    "StartAgent": ".pytest_plugin",
    "eventually": ".pytest_plugin",
    "unique_name": ".pytest_plugin",
    "ServerProcess": ".server",
    "run_cli": ".server",
}

__getattr__ = lazy_exports(globals(), _LAZY)
