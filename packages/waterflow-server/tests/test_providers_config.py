"""Selecting event handlers and the server group provider: flags, variables, and the start-up errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from waterflow_server.cli.dev import dev_command
from waterflow_server.cli.server import server_command
from waterflow_server.providers_config import (
    ProviderChoice,
    ProviderConfigError,
    event_handler_choices,
    server_group_choice,
)

pytestmark = pytest.mark.unit


def test_webhook_options_from_variables_and_flags() -> None:
    environ = {
        "WATERFLOW_EVENT_WEBHOOK_URL": "http://127.0.0.1:9/from-env",
        "WATERFLOW_EVENT_WEBHOOK_SECRET": "shh",
        "WATERFLOW_EVENT_WEBHOOK_QUEUE_SIZE": "7",
        "WATERFLOW_EVENT_HANDLERS": "webhook",
        "WATERFLOW_EVENT_LOG_LOGGER": "mine",
    }
    flags = ["webhook.url=https://hooks.example/in", 'webhook.headers={"Authorization": "Bearer x"}']
    log, webhook = event_handler_choices(["log", "webhook"], flags, environ)
    assert log == ProviderChoice("log", {"queue-size": 1000, "logger": "mine"})
    assert webhook.options["url"] == "https://hooks.example/in"  # a flag wins over a variable
    assert webhook.options["headers"] == {"Authorization": "Bearer x"}
    assert webhook.options["queue-size"] == 7
    assert isinstance(webhook.options["secret"], SecretStr)
    assert "shh" not in repr(webhook)


@pytest.mark.parametrize(
    ("names", "flags", "environ", "message"),
    [
        (["nope"], [], {}, "--event-handler: no event handler named 'nope' (installed: log, webhook)"),
        (
            ["webhook"],
            [],
            {},
            "--event-option webhook.url=... or WATERFLOW_EVENT_WEBHOOK_URL: event handler 'webhook' option 'url' "
            "is required",
        ),
        (
            ["webhook"],
            [],
            {"WATERFLOW_EVENT_WEBHOOK_URL": "gopher://x"},
            "WATERFLOW_EVENT_WEBHOOK_URL: event handler 'webhook' option 'url' must be an http",
        ),
        (
            ["webhook"],
            ["webhook.url=http://x/", "webhook.retries=many"],
            {},
            "--event-option webhook.retries: event handler 'webhook' option 'retries' Input should be a valid integer",
        ),
        (
            ["webhook"],
            ["webhook.url=http://x/", "webhook.headers=Bearer x"],
            {},
            "--event-option webhook.headers: option 'headers' takes JSON",
        ),
        (["webhook"], ["webhook.url=http://x/", "webhook.colour=red"], {}, "has no option 'colour'"),
        (
            ["webhook"],
            [],
            {"WATERFLOW_EVENT_WEBHOOK_URL": "http://x/", "WATERFLOW_EVENT_WEBHOOK_VERIFY": "0"},
            "WATERFLOW_EVENT_WEBHOOK_VERIFY: event handler 'webhook' has no option 'verify'",
        ),
        (["log"], ["webhook.url=http://x/"], {}, "event handler 'webhook' is not selected"),
        (["log"], ["logger"], {}, "--event-option 'logger': expected KEY=VALUE"),
        (["log"], ["logger=x"], {}, "expected HANDLER.OPTION=VALUE"),
    ],
)
def test_event_handler_mistakes_name_their_setting(
    names: list[str], flags: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ProviderConfigError) as caught:
        event_handler_choices(names, flags, environ)
    assert message in str(caught.value)


def test_secret_values_are_never_repeated_in_errors() -> None:
    with pytest.raises(ProviderConfigError) as caught:
        event_handler_choices(["webhook"], [], {"WATERFLOW_EVENT_WEBHOOK_URL": "ftp://user:hunter2@x/"})
    assert "hunter2" not in str(caught.value)


def test_server_group_choices(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("groups:\n  web: [w1]\n")
    assert server_group_choice(None, [], None) == ProviderChoice("agents", {})
    assert server_group_choice(None, [], str(inventory)) == ProviderChoice("inventory", {"path": inventory})
    assert server_group_choice("inventory", [f"path={inventory}"], None).options["path"] == inventory
    with pytest.raises(ProviderConfigError, match="no server group provider named 'cmdb'"):
        server_group_choice("cmdb", [], None)
    with pytest.raises(ProviderConfigError, match="--inventory: the 'agents' server group provider reads no inventory"):
        server_group_choice("agents", [], str(inventory))
    with pytest.raises(ProviderConfigError, match=r"option 'path' is required"):
        server_group_choice("inventory", [], None)
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n  web: [w1]\n  db: w2\n")
    with pytest.raises(
        ProviderConfigError, match=r"--server-groups inventory: .*bad\.yaml:3:7: groups\.db: expected a list"
    ):
        server_group_choice(None, [], str(bad))


@pytest.mark.parametrize("command", [server_command, dev_command])
def test_the_commands_stop_at_start_up_with_the_option_named(command: object, tmp_path: Path) -> None:
    bad = tmp_path / "inventory.yaml"
    bad.write_text("groups:\n  web: [a, a]\n")
    runner = CliRunner()
    result = runner.invoke(command, ["--inventory", str(bad)], env={"WATERFLOW_EVENT_HANDLERS": ""})  # type: ignore[arg-type]
    assert result.exit_code == 1, result.output
    assert f"{bad}:2:12: groups.web[1]: server 'a' is listed twice" in result.output
    result = runner.invoke(command, ["--event-handler", "webhook"])  # type: ignore[arg-type]
    assert result.exit_code == 1
    assert "option 'url' is required" in result.output
    assert "Traceback" not in result.output


def test_a_spool_in_use_stops_the_server_at_start_up(tmp_path: Path) -> None:
    from waterflow_server.event_spool import Spool

    held = Spool(tmp_path, "log")
    try:
        result = CliRunner().invoke(server_command, ["--event-spool", str(tmp_path)])
    finally:
        held.close()
    assert result.exit_code == 1
    assert "--event-spool: event spool" in result.output and "in use by another server process" in result.output
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = CliRunner().invoke(server_command, ["--event-spool", str(not_a_dir / "sub")])
    assert result.exit_code == 1 and "--event-spool: event spool" in result.output
