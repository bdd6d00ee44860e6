"""The layered configuration (ADR 0035) through real processes: file < environment < flags."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from waterflow_testing.devserver import DevServer
from waterflow_testing.processes import free_port, read_log, spawn_logged, stop_process_blocking
from waterflow_testing.server import StartServer

TOKEN = "config-test-token-0123456789"
TEXT_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def _waterflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "waterflow_sdk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _shown(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return {row["key"]: row for row in json.loads(result.stdout)["settings"]}


def _json_log_lines(output: str) -> list[dict[str, Any]]:
    """Every log line of ``output`` parsed; fails on a log line in the text format."""
    records = []
    for line in output.splitlines():
        assert not TEXT_LOG_LINE.match(line), f"a text log line in JSON mode: {line}"
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


@pytest.mark.integration
def test_a_server_takes_the_file_then_the_environment_then_flags(
    start_server: StartServer, tmp_path: Path, parked_workflow: str
) -> None:
    config = _write(
        tmp_path / "server.toml",
        f"""
[api]
port = 1  # the flag of the fixture wins

[access]
token = "{TOKEN}"

[limits]
max_body_bytes = "2KiB"
validation_budget = "7s"
streams_per_client = 1

[logging]
level = "info"
format = "json"
""",
    )
    env = {"WATERFLOW_CONFIG": str(config), "WATERFLOW_LIMITS_MAX_BODY_BYTES": "4096", "WATERFLOW_API_PORT": "2"}
    server = start_server(env=env)
    headers = {"authorization": f"Bearer {TOKEN}"}
    # The token came from the file; the body limit from the environment (over the file's 2 KiB).
    assert httpx.get(f"{server.url}/v1/workflows", timeout=30).status_code == 401
    small = httpx.post(f"{server.url}/v1/workflows", json={"workflow": "x" * 3000}, headers=headers, timeout=30)
    assert small.status_code == 422, small.text
    big = httpx.post(f"{server.url}/v1/workflows", json={"workflow": "x" * 5000}, headers=headers, timeout=30)
    assert big.status_code == 413, big.text
    httpx.get(f"{server.url}/v1/workflows", headers={"authorization": "Bearer wrong-but-long-enough"}, timeout=30)
    # One follow stream per client, as the file says: the second is refused.
    run = httpx.post(f"{server.url}/v1/workflows", json={"workflow": parked_workflow}, headers=headers, timeout=60)
    assert run.status_code == 201, run.text
    logs = f"{server.url}/v1/workflows/{run.json()['id']}/logs?follow=true"
    with httpx.stream("GET", logs, headers=headers, timeout=30) as first:
        assert first.status_code == 200
        second = httpx.get(logs, headers=headers, timeout=30)
        assert second.status_code == 429 and second.json()["code"] == "too_many_streams", second.text

    records = _json_log_lines(server.output)
    assert records, server.output
    assert all({"ts", "level", "logger", "message"} <= set(record) for record in records)
    assert any(record["level"] == "info" for record in records)  # the level came from the file
    assert TOKEN not in server.output and "wrong-but-long-enough" not in server.output

    shown = _shown(_waterflow("config", "show", "--server", "-o", "json", "--", "--port", str(server.port), env=env))
    assert shown["api.port"]["value"] == server.port and shown["api.port"]["source"] == "flag --port"
    assert shown["limits.max_body_bytes"] == {
        "key": "limits.max_body_bytes",
        "value": 4096,
        "source": "env WATERFLOW_LIMITS_MAX_BODY_BYTES",
    }
    assert shown["limits.validation_budget"]["value"] == 7.0
    assert shown["limits.validation_budget"]["source"] == f"file {config}"
    assert shown["access.token"]["value"] == "<set>"
    assert shown["limits.streams_total"]["source"] == "default"
    assert shown["limits.streams_per_client"] == {
        "key": "limits.streams_per_client",
        "value": 1,
        "source": f"file {config}",
    }


@pytest.mark.unit
def test_config_show_never_prints_a_secret(tmp_path: Path) -> None:
    config = _write(
        tmp_path / "server.toml",
        '[events]\nhandlers = ["webhook"]\n[events.options.webhook]\nurl = "https://hooks.example/x"\n'
        'secret = "webhook-secret-value"\n[temporal]\napi_key = "temporal-key-value"\n',
    )
    for output in ("table", "json", "yaml"):
        result = _waterflow("config", "show", "--config", str(config), "-o", output, env={"WATERFLOW_API_TOKEN": TOKEN})
        assert result.returncode == 0, result.stderr
        for secret in ("webhook-secret-value", "temporal-key-value", TOKEN, "hooks.example"):
            assert secret not in result.stdout
        assert "<set>" in result.stdout
    rows = _shown(_waterflow("config", "show", "--config", str(config), "-o", "json"))
    assert rows["events.options.webhook.secret"]["source"] == f"file {config}"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[api]\nprot = 8080\n",
            "{file}:2: unknown key 'api.prot' (known in [api]: host, port, run_worker, task_queue)",
        ),
        ("[limits]\nmax_body_bytes = 10\n", "{file}:2: limits.max_body_bytes: Input should be greater than or equal"),
        ('[api]\nport = "eighty"\n', "{file}:2: api.port: Input should be a valid integer"),
        ("[api\nport = 1\n", "{file}:1:5: Expected ']' at the end of a table declaration (TOML)"),
        ('[limits]\nvalidation_budget = "soon"\n', "{file}:2: limits.validation_budget: 'soon' is not a duration"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_key_and_exit_2(tmp_path: Path, text: str, expected: str) -> None:
    config = _write(tmp_path / "bad.toml", text)
    for args in (["server", "--config", str(config)], ["config", "show", "--config", str(config)]):
        result = _waterflow(*args)
        assert result.returncode == 2, result
        assert result.stderr.startswith("Error: " + expected.format(file=config)), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


@pytest.mark.unit
def test_a_bad_variable_or_flag_is_named() -> None:
    result = _waterflow("server", env={"WATERFLOW_LIMITS_STREAMS_TOTAL": "0"})
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: WATERFLOW_LIMITS_STREAMS_TOTAL: Input should be greater than or equal to 1"
    result = _waterflow("config", "show", "--agent", "--", "--fact", "no-equals-sign")
    assert result.returncode == 2 and "--fact" in result.stderr and "Traceback" not in result.stderr
    missing = _waterflow("server", env={"WATERFLOW_CONFIG": "/nonexistent/waterflow.toml"})
    assert missing.returncode == 2
    assert "/nonexistent/waterflow.toml: cannot read the configuration file" in missing.stderr


@pytest.mark.unit
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_secret_in_a_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    config = _write(tmp_path / "server.toml", f'[access]\ntoken = "{TOKEN}"\n', mode)
    result = _waterflow("server", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: holds access.token" in result.stderr and f"chmod 600 {config}" in result.stderr
    assert TOKEN not in result.stderr
    agent = _write(tmp_path / "agent.toml", '[secrets.options]\nprefix = "APP_"\n', mode)
    assert _waterflow("config", "show", "--agent", "--config", str(agent)).returncode == 2
    # Settings without a secret may be shared.
    public = _write(tmp_path / "public.toml", "[api]\nport = 9999\n", mode)
    assert _shown(_waterflow("config", "show", "--config", str(public), "-o", "json"))["api.port"]["value"] == 9999


@pytest.mark.unit
def test_flags_of_the_command_override_the_environment_in_config_show(tmp_path: Path) -> None:
    config = _write(tmp_path / "dev.toml", '[dev]\nagent_groups = ["web", "db"]\nretention = "2d"\n')
    shown = _shown(
        _waterflow(
            "config", "show", "--dev", "--config", str(config), "-o", "json", "--", "--agent-group", "ops", "-v",
            env={"WATERFLOW_DEV_AGENT_NAME": "box", "WATERFLOW_LOG_LEVEL": "error"},
        )
    )  # fmt: skip
    assert shown["dev.agent_groups"] == {"key": "dev.agent_groups", "value": ["ops"], "source": "flag --agent-group"}
    assert shown["dev.retention"]["value"] == 2 * 86400.0
    assert shown["dev.agent_name"]["source"] == "env WATERFLOW_DEV_AGENT_NAME"
    assert shown["logging.level"] == {"key": "logging.level", "value": "info", "source": "flag --verbose"}


@pytest.mark.integration
def test_an_agent_runs_from_a_config_file(temporal_dev: DevServer, tmp_path: Path) -> None:
    name = f"cfg-agent-{free_port()}"
    config = _write(
        tmp_path / "agent.toml",
        f"""
[temporal]
address = "{temporal_dev.address}"

[agent]
name = "{name}"
groups = ["cfg-web", "cfg-db"]
workdir = "{tmp_path / "work"}"
grace = "2s"

[logging]
format = "json"
level = "debug"
""",
    )
    log = tmp_path / "agent.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
    process, offset = spawn_logged(
        [sys.executable, "-P", "-m", "waterflow_agent", "--config", str(config), "--group", "cfg-flag"],
        log,
        env={**environ, "WATERFLOW_AGENT_MAX_CONCURRENT": "3"},
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while "ready" not in read_log(log, offset) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        output = read_log(log, offset)
        # The flag replaced the file's groups; the name, Temporal and workdir came from the file.
        assert f"waterflow agent {name} ready: polling cfg-flag, agent:{name}" in output, output
        assert (tmp_path / "work").is_dir()
    finally:
        stop_process_blocking(process, 30)
    records = _json_log_lines(read_log(log, offset))
    assert any(record["level"] == "debug" for record in records), read_log(log, offset)


def _cli_with_client_config(tmp_path: Path, text: str, mode: int, *args: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "xdg"
    (home / "waterflow").mkdir(parents=True, exist_ok=True)
    _write(home / "waterflow" / "client.toml", text, mode)
    return _waterflow(*args, env={"XDG_CONFIG_HOME": str(home)})


@pytest.mark.integration
def test_client_commands_read_the_user_config_file(start_server: StartServer, tmp_path: Path) -> None:
    server = start_server(token=TOKEN)
    text = f'server = "{server.url}"\ntoken = "{TOKEN}"\noutput = "json"\n'
    listed = _cli_with_client_config(tmp_path, text, 0o600, "list")
    assert listed.returncode == 0, listed.stderr
    json.loads(listed.stdout)  # the default output came from the file
    # Other users could read the token: refused, naming the file.
    refused = _cli_with_client_config(tmp_path, text, 0o644, "list")
    assert refused.returncode == 2 and "chmod 600" in refused.stderr and TOKEN not in refused.stderr
    # A flag beats the file; a wrong token from the file is the server's 401.
    wrong = _cli_with_client_config(tmp_path, text.replace(TOKEN, "x" * 24), 0o600, "list", "-o", "text")
    assert wrong.returncode == 1 and "401" in wrong.stderr + wrong.stdout


@pytest.mark.integration
def test_dev_runs_from_a_config_file_and_its_agent_logs_json(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    config = _write(
        tmp_path / "dev.toml",
        f"""
[api]
port = {port}

[limits]
max_body_bytes = "2KiB"

[dev]
data_dir = "{data}"
temporal_port = {free_port()}
headless = true
agent_name = "cfg-dev"

[logging]
format = "json"
level = "info"
""",
    )
    log = tmp_path / "dev.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
    process, offset = spawn_logged(
        [sys.executable, "-m", "waterflow_sdk", "dev"],
        log,
        env={**environ, "PYTHONUNBUFFERED": "1", "WATERFLOW_CONFIG": str(config)},
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while not re.search(r"^ready\b", read_log(log, offset), re.M):
            assert process.poll() is None, read_log(log, offset)
            assert time.monotonic() < deadline, read_log(log, offset)
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"  # the port of the file
        assert httpx.get(f"{url}/healthz", timeout=30).json()["status"] == "ok"
        big = httpx.post(f"{url}/v1/workflows", json={"workflow": "x" * 3000}, timeout=30)
        assert big.status_code == 413, big.text
    finally:
        stop_process_blocking(process, 90)
    assert any(record["logger"].startswith("waterflow") for record in _json_log_lines(read_log(log, offset)))
    agent_log = (data / "logs" / "agent-cfg-dev.log").read_text()
    assert "waterflow agent cfg-dev ready" in agent_log
    assert _json_log_lines(agent_log), agent_log  # the agent got the format; it did not read dev.toml


@pytest.mark.unit
def test_client_settings_from_variables_and_their_mistakes(tmp_path: Path) -> None:
    home = {"XDG_CONFIG_HOME": str(tmp_path / "none")}  # no client.toml: no error
    # A step's WATERFLOW_OUTPUT (its outputs file) is not the client's output format.
    down = _waterflow("list", "--server", "http://127.0.0.1:1", env={**home, "WATERFLOW_OUTPUT": "/tmp/out"})
    assert down.returncode == 1 and "cannot reach the Waterflow server at http://127.0.0.1:1" in down.stderr
    bad = _waterflow("list", env={**home, "WATERFLOW_CLIENT_OUTPUT": "xml"})
    assert bad.returncode == 2
    assert (
        bad.stderr.strip() == "Error: WATERFLOW_CLIENT_OUTPUT: output must be one of text, table, json, yaml, not 'xml'"
    )
    named = _waterflow("list", env={"WATERFLOW_CLIENT_CONFIG": str(tmp_path / "missing.toml")})
    assert named.returncode == 2 and f"{tmp_path / 'missing.toml'}: cannot read" in named.stderr
    unknown = _cli_with_client_config(tmp_path, 'sever = "http://x"\n', 0o644, "list")
    assert (
        unknown.returncode == 2
        and "unknown key 'sever' (known in the top level: output, server, token)" in unknown.stderr
    )
