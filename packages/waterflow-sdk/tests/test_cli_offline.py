"""The CLI without a server: offline validation, the schema, and friendly errors."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

from click.testing import CliRunner

from waterflow_sdk.cli import cli

GOOD = textwrap.dedent(
    """
    name: ok
    jobs:
      a:
        runs-on: local
        steps:
          - uses: exec/shell
            with: {command: echo hi}
    """
).lstrip()

BAD = textwrap.dedent(
    """
    name: bad
    jobs:
      a:
        runs-on: local
        steps:
          - uses: exec/shell
            timeout: soon
    """
).lstrip()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_validate_prints_file_line_column_path_message(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(BAD)
    result = CliRunner().invoke(cli, ["validate", str(good), str(bad)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{good}: ok" in lines
    problem = next(line for line in lines if line.startswith(f"{bad}:"))
    assert problem.startswith(f"{bad}:7:")
    assert "jobs.a.steps[0].timeout:" in problem

    ok = CliRunner().invoke(cli, ["validate", str(good)])
    assert ok.exit_code == 0, ok.output


def test_validate_json_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    result = CliRunner().invoke(cli, ["validate", "--output", "json", str(bad)])
    assert result.exit_code == 1
    [entry] = json.loads(result.output)
    assert entry["valid"] is False
    assert entry["errors"][0]["path"] == "jobs.a.steps[0].timeout"


def test_validate_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "cannot read" in result.output
    assert "Traceback" not in result.output


def test_schema_is_the_dsl_json_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert "jobs" in schema["properties"] and "name" in schema["required"]


def test_unreachable_server_is_one_friendly_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    workflow = tmp_path / "w.yaml"
    workflow.write_text(GOOD)
    for args in (["status", "x"], ["logs", "x"], ["cancel", "x"], ["list"], ["submit", str(workflow)]):
        result = CliRunner().invoke(cli, [*args, "--server", url])
        assert result.exit_code == 1, (args, result.output)
        assert f"cannot reach the Waterflow server at {url}" in result.output
        assert "waterflow dev" in result.output
        assert "Traceback" not in result.output


def test_bad_input_syntax_is_a_usage_error(tmp_path: Path) -> None:
    workflow = tmp_path / "w.yaml"
    workflow.write_text(GOOD)
    result = CliRunner().invoke(cli, ["submit", str(workflow), "-i", "novalue"])
    assert result.exit_code == 2
    assert "key=value" in result.output
