"""Test tiers for the whole workspace: every test is ``unit``, ``integration`` or ``e2e``.

A test marked explicitly keeps its mark. Otherwise the tier follows from what the test starts:
under ``tests/`` it is ``e2e`` (the whole stack), a test using a fixture that starts a real
Temporal, agent or server is ``integration``, anything else is ``unit``
(``hatch test -m unit`` runs the fast tier; docs/reference/testing.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = ("unit", "integration", "e2e")
REAL_COMPONENT_FIXTURES = frozenset(
    {
        "temporal_dev",
        "temporal_client",
        "start_agent",
        "step_harness",
        "start_server",
        "waterflow_cli",
        "task_queue",
        "docker_test_image",
    }
)
E2E_DIR = Path(__file__).resolve().parent / "tests"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every unmarked test its tier."""
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        if E2E_DIR in Path(str(item.path)).parents:
            tier = "e2e"
        elif REAL_COMPONENT_FIXTURES & set(getattr(item, "fixturenames", ())):
            tier = "integration"
        else:
            tier = "unit"
        item.add_marker(tier)
