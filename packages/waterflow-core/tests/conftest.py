"""Fixtures shared by the plugin and registry tests."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from waterflow_testing import write_node_package

Install = Callable[..., str]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Install throwaway plugin distributions on a fresh ``PYTHONPATH`` entry, as pip would.

    ``install(source, name=None, dist=None, version="1.0", module=None, groups=("waterflow.nodes",))``
    returns the module name (unique unless given). The entry point ``name`` defaults to the
    module and the distribution to the entry point name; installing the same distribution again
    is an upgrade. The modules are unloaded after the test.
    """
    site = tmp_path / "site"
    site.mkdir()
    # Both: sys.path makes it importable, PYTHONPATH makes it a trusted plugin directory
    # (waterflow_core.plugins.plugin_path), as for a process started with that PYTHONPATH.
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    modules: list[str] = []

    def _install(
        source: str,
        *,
        name: str | None = None,
        dist: str | None = None,
        version: str = "1.0",
        module: str | None = None,
        groups: tuple[str, ...] = ("waterflow.nodes",),
    ) -> str:
        module = module or f"wf_test_plugin_{uuid.uuid4().hex[:10]}"
        entry_point = name or module
        write_node_package(
            site,
            dist or entry_point.replace("_", "-"),
            module,
            source,
            version=version,
            entry_point=entry_point,
            groups=groups,
        )
        modules.append(module)
        return module

    yield _install
    for module in modules:
        for loaded in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
            del sys.modules[loaded]
