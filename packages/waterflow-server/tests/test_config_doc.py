"""docs/reference/configuration.md is generated from the configuration models and kept current."""

from __future__ import annotations

from pathlib import Path

import pytest

from waterflow_server.config_doc import render

pytestmark = pytest.mark.unit

PAGE = Path(__file__).resolve().parents[3] / "docs" / "reference" / "configuration.md"


def test_the_configuration_reference_is_current() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/reference/configuration.md is stale: run "
        "python -m waterflow_server.config_doc docs/reference/configuration.md"
    )


def test_every_setting_of_every_process_is_on_the_page() -> None:
    from waterflow_agent.config import AgentProcessConfig
    from waterflow_core.config import settings_of
    from waterflow_server.config import DevConfig

    page = PAGE.read_text(encoding="utf-8")
    for model in (DevConfig, AgentProcessConfig):
        for setting in settings_of(model):
            assert f"| `{setting.key}` |" in page
            assert setting.env is None or f"`{setting.env}`" in page
