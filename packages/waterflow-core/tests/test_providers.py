"""The default providers shipped in core, exercised for real (env vars, files, loggers)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from waterflow_core.inventory import InventoryServerGroupProvider
from waterflow_core.plugins import PluginManager
from waterflow_core.providers import (
    AgentsServerGroupProvider,
    EnvSecretProvider,
    EventHandler,
    JsonlLogHandler,
    LogEventHandler,
    LogHandler,
    SecretProvider,
    ServerGroupProvider,
)
from waterflow_core.webhook import WebhookEventHandler


async def test_env_secret_provider_env_then_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATERFLOW_SECRET_DB_PASSWORD", "from-env")
    monkeypatch.setenv("WATERFLOW_SECRETS_DIR", str(tmp_path))
    (tmp_path / "API_TOKEN").write_text("from-file\n")
    (tmp_path / "DB_PASSWORD").write_text("shadowed\n")
    provider = EnvSecretProvider()
    assert provider.options.directory == tmp_path
    assert await provider.get("DB_PASSWORD") == "from-env"
    assert await provider.get("db_password") == "from-env"  # names are case-insensitive
    assert await provider.get("api_token") == "from-file"
    assert await provider.get("MISSING") is None
    assert await provider.get("../etc/passwd") is None
    assert await provider.get_many(["API_TOKEN", "MISSING"]) == {"API_TOKEN": "from-file"}


async def test_env_secret_provider_options(tmp_path: Path) -> None:
    provider = EnvSecretProvider({"prefix": "NOPE_", "directory": str(tmp_path)})
    (tmp_path / "K").write_text("v")
    assert await provider.get("K") == "v"
    with pytest.raises(ValidationError):
        EnvSecretProvider({"unknown": 1})


async def test_jsonl_log_handler_appends_lines(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "steps.jsonl"
    handler = JsonlLogHandler({"path": str(path)})
    await handler.emit({"workflow_id": "w", "step": "j/s", "message": "héllo"})
    await handler.emit({"workflow_id": "w", "step": "j/s", "message": "second\nline"})
    await handler.close()
    again = JsonlLogHandler({"path": str(path)})
    await again.emit({"message": "appended"})
    await again.close()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["message"] for line in lines] == ["héllo", "second\nline", "appended"]


async def test_log_event_handler(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="waterflow.events"):
        await LogEventHandler().handle({"type": "run.started", "workflow_id": "w1"})
    assert "run.started" in caplog.text and '"workflow_id": "w1"' in caplog.text


async def test_agents_server_group_provider_needs_a_client() -> None:
    with pytest.raises(RuntimeError, match="Temporal client"):
        await AgentsServerGroupProvider().servers("web")


def test_defaults_are_registered_through_the_hooks() -> None:
    manager = PluginManager(allowlist=[])
    assert manager.provider_classes(SecretProvider) == {"env": EnvSecretProvider}
    assert manager.provider_classes(LogHandler) == {"jsonl": JsonlLogHandler}
    assert manager.provider_classes(EventHandler) == {"log": LogEventHandler, "webhook": WebhookEventHandler}
    assert manager.provider_classes(ServerGroupProvider) == {
        "agents": AgentsServerGroupProvider,
        "inventory": InventoryServerGroupProvider,
    }


def test_every_event_handler_has_a_bounded_queue_size() -> None:
    assert LogEventHandler().options.queue_size == 1000
    assert LogEventHandler({"queue-size": 3}).options.queue_size == 3
    with pytest.raises(ValidationError):
        LogEventHandler({"queue-size": 0})
