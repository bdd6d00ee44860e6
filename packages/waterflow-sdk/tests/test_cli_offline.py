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


def placed(stdout: str, path: Path) -> list[str]:
    """The problem lines of ``validate``'s text output (without the quoted source lines and carets)."""
    return [line for line in stdout.splitlines() if line.startswith(f"{path}:")]


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
    [entry] = json.loads(result.stdout)
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
    schema = json.loads(result.stdout)
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


# -- offline validation of with: against the nodes installed here --------------------------------

TYPOS = textwrap.dedent(
    """
    name: typos
    jobs:
      a:
        runs-on: local
        steps:
          - uses: exec/shel
            with: {command: echo hi}
          - uses: exec/shell
            with:
              comand: echo hi
          - uses: file/transfer
            with:
              content: hello
              destination: out.txt
              mode: "rwx"
          - uses: exec/shell
            with:
              command: echo
              output-cap: lots
              shell: fish
          - uses: http/request
            with: {method: GET}
            compensate:
              uses: exec/shell
    """
).lstrip()

PYDANTIC_WORDING = ("Input should", "Field required", "Extra inputs", "not permitted", "Value error")


def test_validate_checks_with_against_the_installed_nodes(tmp_path: Path) -> None:
    path = tmp_path / "typos.yaml"
    path.write_text(TYPOS)
    result = CliRunner().invoke(cli, ["validate", "--local", str(path)])
    assert result.exit_code == 1, result.output
    first, *rest = placed(result.stdout, path)
    assert first.startswith(
        f"{path}:6:15: jobs.a.steps[0].uses: unknown node type 'exec/shel' (did you mean 'exec/shell'? installed here: "
    )
    assert first.endswith("); if only the agents have it, validate with --server URL")
    assert rest == [
        f"{path}:9:9: jobs.a.steps[1].with.command: missing required input 'command' of exec/shell",
        f"{path}:10:11: jobs.a.steps[1].with.comand: exec/shell has no input 'comand' (did you mean 'command'?)",
        f"{path}:15:17: jobs.a.steps[2].with.mode: input 'mode' of file/transfer: "
        "mode must be an octal string such as \"0644\", got 'rwx'",
        f"{path}:19:23: jobs.a.steps[3].with.output-cap: input 'output-cap' of exec/shell: "
        "expected an integer, got 'lots'",
        f"{path}:20:18: jobs.a.steps[3].with.shell: input 'shell' of exec/shell: "
        "expected one of 'bash', 'sh', got 'fish'",
        f"{path}:22:9: jobs.a.steps[4].with.url: missing required input 'url' of http/request",
        f"{path}:24:17: jobs.a.steps[4].compensate.uses: missing required input 'command' of exec/shell",
    ]
    assert not any(phrase in result.stdout for phrase in PYDANTIC_WORDING)
    assert f"{path}: ok" not in result.stdout


def test_validate_json_lists_with_problems_and_unchecked_nodes(tmp_path: Path) -> None:
    path = tmp_path / "typos.yaml"
    path.write_text(TYPOS.replace("exec/shel\n", "custom/thing@2\n"))
    result = CliRunner().invoke(cli, ["validate", "--local", "-o", "json", str(path)])
    assert result.exit_code == 1
    [entry] = json.loads(result.stdout)
    assert entry["unchecked"] == ["custom/thing@2"]
    assert {e["path"] for e in entry["errors"]} >= {"jobs.a.steps[1].with.comand", "jobs.a.steps[2].with.mode"}


def test_a_node_not_installed_here_is_a_note_not_an_error(tmp_path: Path) -> None:
    # It may be installed on the agents only: offline, its with: cannot be checked, and says so.
    path = tmp_path / "agent-only.yaml"
    path.write_text(GOOD.replace("exec/shell", "custom/thing").replace("command: echo hi", "anything: 1"))
    result = CliRunner().invoke(cli, ["validate", "--local", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{path}: ok",
        f"{path}: note: custom/thing is not installed here, so its with: was not checked "
        "(--server URL checks it against a server's catalog)",
    ]


def test_valid_files_with_every_installed_node_are_ok(tmp_path: Path) -> None:
    path = tmp_path / "fine.yaml"
    path.write_text(
        GOOD
        + "      - uses: file/transfer\n"
        + "        with: {content: $<< inputs.x >>, destination: out.txt, mode: '0644'}\n"
        + "      - uses: http/request\n"
        + "        with: {url: 'http://127.0.0.1:1/', expect-status: [200, 204], timeout: 5s}\n"
        + "        compensate: {uses: exec/script, with: {script: 'exit 0'}}\n"
        + "    outputs: {}\n"
    )
    path.write_text(path.read_text().replace("name: ok\n", "name: ok\ninputs: {x: {type: string}}\n"))
    result = CliRunner().invoke(cli, ["validate", "--local", str(path)])
    assert (result.exit_code, result.stdout) == (0, f"{path}: ok\n")


def test_local_wins_over_the_server_env_var(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(GOOD)
    url = f"http://127.0.0.1:{closed_port()}"
    local = CliRunner().invoke(cli, ["validate", "--local", str(path)], env={"WATERFLOW_SERVER": url})
    assert (local.exit_code, local.stdout) == (0, f"{path}: ok\n")
    remote = CliRunner().invoke(cli, ["validate", str(path)], env={"WATERFLOW_SERVER": url})
    assert remote.exit_code == 1
    assert f"cannot reach the Waterflow server at {url}" in remote.output


def test_a_huge_with_is_reported_briefly(tmp_path: Path) -> None:
    keys = ",".join(f"k{i}: v" for i in range(100_000))
    path = tmp_path / "huge.yaml"
    path.write_text(GOOD.replace("{command: echo hi}", "{command: echo hi," + keys + "}"))
    assert path.stat().st_size < 1 << 20
    result = CliRunner().invoke(cli, ["validate", "--local", str(path)])
    assert result.exit_code == 1
    lines = placed(result.stdout, path)
    # Each problem quotes its line: a window of it, not the 1 MB line.
    assert len(lines) == 21 and len(result.stdout) < 20_000
    assert max(len(line) for line in result.stdout.splitlines()[1::3]) < 200
    assert lines[0] == (
        f"{path}:7:9: jobs.a.steps[0].with: 99980 more problems in this with: are not listed (only the first 20 are)"
    )
    assert lines[1].endswith(
        "exec/shell has no input 'k0' (expected one of: command, cwd, env, output-cap, shell, stdin)"
    )


def test_deep_nesting_in_with_is_reported_briefly(tmp_path: Path) -> None:
    deep = "{a: " * 70 + "x" + "}" * 70
    path = tmp_path / "deep.yaml"
    path.write_text(GOOD.replace("{command: echo hi}", "{command: echo hi, env: " + deep + "}"))
    result = CliRunner().invoke(cli, ["validate", "--local", str(path)])
    assert result.exit_code == 1
    [line] = placed(result.stdout, path)
    assert "nesting deeper than 64 levels" in line and len(line) < 300


# -- the node catalog of this environment ----------------------------------------------------------


def test_nodes_list_local() -> None:
    result = CliRunner().invoke(cli, ["nodes", "list", "--local"])
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["TYPE", "VERSION", "DESCRIPTION"]
    types = [row.split()[0] for row in rows]
    assert {"exec/shell", "exec/script", "file/transfer", "http/request"} <= set(types)
    assert types == sorted(types)
    shell = next(row for row in rows if row.startswith("exec/shell "))
    assert shell.split()[1] == "1.0.0"

    listed = json.loads(CliRunner().invoke(cli, ["nodes", "list", "--local", "-o", "json"]).stdout)
    entry = next(node for node in listed if node["type"] == "exec/shell")
    assert entry["inputs_schema"]["required"] == ["command"]
    assert (entry["agents"], entry["groups"]) == ([], [])


def test_nodes_show_local_renders_inputs_as_a_table() -> None:
    result = CliRunner().invoke(cli, ["nodes", "show", "--local", "exec/shell"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "exec/shell 1.0.0"
    start = lines.index("inputs (with:):")
    assert lines[start + 1].split() == ["NAME", "TYPE", "REQUIRED", "DEFAULT", "DESCRIPTION"]
    end = lines.index("", start)
    rows = {line.split()[0]: line.split() for line in lines[start + 2 : end]}
    assert rows["command"][1:3] == ["string", "yes"]
    assert rows["shell"][1:6] == ["'bash'", "|", "'sh'", "no", '"bash"']
    assert rows["env"][1:4] == ["mapping[string]", "no", "-"]
    assert "outputs (steps.<id>.outputs):" in lines
    assert any(line.split()[:2] == ["exit-code", "integer"] for line in lines)


def test_nodes_show_unknown_type_suggests_the_closest() -> None:
    result = CliRunner().invoke(cli, ["nodes", "show", "--local", "exec/shel"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: no node type 'exec/shel' is installed here (did you mean 'exec/shell'?); "
        "`waterflow nodes list` shows them all"
    )
    major = CliRunner().invoke(cli, ["nodes", "show", "--local", "exec/shell@9"])
    assert major.exit_code == 1
    assert "error: node type exec/shell has no major version 9 (there are: @1)" in major.output
