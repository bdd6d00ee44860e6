"""The CLI's surface without a server: the generated command reference, shell completion, exit
statuses (usage 2, Ctrl-C 130) and compiler-style problem lines. Commands run as subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from waterflow_core.errors import ErrorItem
from waterflow_sdk import _clidoc
from waterflow_sdk.diagnostics import QUOTED, problem_lines

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
COMMANDS_PAGE = REPO / "docs" / "reference" / "cli" / "commands.md"


def waterflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "waterflow_sdk", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "WATERFLOW_SERVER": "http://127.0.0.1:1", **(env or {})},
        stdin=subprocess.DEVNULL,
    )


# -- the generated reference ------------------------------------------------------------------------


def test_the_command_reference_is_generated_from_the_code() -> None:
    page = COMMANDS_PAGE.read_text(encoding="utf-8")
    assert page == _clidoc.render(), f"{COMMANDS_PAGE} is stale: regenerate it with `{_clidoc.GENERATOR}`"
    for command in (
        "waterflow submit",
        "waterflow agents show",
        "waterflow completion",
        "waterflow server",
        "waterflow agent",
        "waterflow dev",
        "waterflow nodes list",
    ):
        assert f"## `{command}`" in page
    assert "| `--since` | time |" in page and "`WATERFLOW_SERVER`" in page


def test_the_generator_checks_a_page(tmp_path: Path) -> None:
    fresh = subprocess.run(
        [sys.executable, "-m", "waterflow_sdk._clidoc", "--check", str(COMMANDS_PAGE)], capture_output=True, text=True
    )
    assert fresh.returncode == 0, fresh.stderr
    stale = tmp_path / "commands.md"
    stale.write_text(COMMANDS_PAGE.read_text().replace("`--limit`", "`--max`"))
    checked = subprocess.run(
        [sys.executable, "-m", "waterflow_sdk._clidoc", "--check", str(stale)], capture_output=True, text=True
    )
    assert checked.returncode == 1 and "is stale: regenerate it with" in checked.stderr


# -- completion ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_shell_script(shell: str) -> None:
    script = waterflow("completion", shell)
    assert script.returncode == 0, script.stderr
    assert "_WATERFLOW_COMPLETE" in script.stdout and f"{shell}_complete" in script.stdout


def test_the_completion_script_completes_commands_and_choices() -> None:
    def complete(words: str) -> list[str]:
        env = {
            "_WATERFLOW_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        result = waterflow(env=env)
        assert result.returncode == 0, result.stderr
        return [line.split(",", 1)[1] for line in result.stdout.splitlines()]

    assert complete("waterflow ag") == ["agent", "agents"]
    assert complete("waterflow agents ") == ["list", "show"]
    assert complete("waterflow status x -o ") == ["text", "table", "json", "yaml"]
    assert "--since" in complete("waterflow list --s")
    assert complete("waterflow completion ") == ["bash", "zsh", "fish"]


# -- exit statuses ------------------------------------------------------------------------------------


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    unknown = waterflow("nosuch")
    assert unknown.returncode == 2 and "No such command 'nosuch'" in unknown.stderr
    since = waterflow("list", "--since", "soon")
    assert since.returncode == 2 and "'soon' is neither a time" in since.stderr
    binary = tmp_path / "w.yaml"
    binary.write_bytes(b"\xff\xfe")
    unreadable = waterflow("submit", str(binary))
    assert unreadable.returncode == 2 and f"cannot read {binary}" in unreadable.stderr
    data = waterflow("signal", "run", "go", "--data", "[1]")
    assert data.returncode == 2 and "must be a JSON object" in data.stderr
    watch = waterflow("status", "x", "--watch", "-o", "yaml")
    assert watch.returncode == 2 and "use --wait with --output yaml" in watch.stderr
    unreachable = waterflow("status", "x")
    assert unreachable.returncode == 1 and unreachable.stderr.count("\n") == 1
    assert "Traceback" not in unknown.stderr + since.stderr + unreadable.stderr + unreachable.stderr


def test_ctrl_c_exits_130_without_a_traceback() -> None:
    # A server that accepts the connection and never answers: the CLI waits until interrupted.
    accepted = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def accept() -> None:
            connection, _ = listener.accept()
            accepted.set()
            time.sleep(30)
            connection.close()

        threading.Thread(target=accept, daemon=True).start()
        process = subprocess.Popen(
            [sys.executable, "-m", "waterflow_sdk", "status", "some-run", "--server", f"http://127.0.0.1:{port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert accepted.wait(30), "the CLI never connected"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr


# -- problems as a compiler shows them ------------------------------------------------------------------


def test_the_caret_stands_under_the_column_tabs_kept() -> None:
    text = "name: x\nkey:\t'value'  # note\n"
    item = ErrorItem(line=2, column=6, path="key", message="bad value")
    assert problem_lines(item, source="w.yaml", text=text) == [
        "w.yaml:2:6: key: bad value",
        "    2 | key:\t'value'  # note",
        "      |     \t^",
    ]


def test_a_long_line_is_quoted_around_the_column() -> None:
    line = "x" * 5000 + "BAD" + "y" * 5000
    item = ErrorItem(line=1, column=5001, path="", message="here")
    head, quoted, caret = problem_lines(item, text=line)
    assert head == "1:5001: here"
    assert len(quoted) < QUOTED + 20 and quoted.startswith("    1 | ...") and quoted.endswith("...")
    assert quoted[caret.index("^") :].startswith("BAD")


def test_problems_outside_the_text_have_no_place() -> None:
    data = ErrorItem(line=0, column=0, path="data.ticket", message="required to approve")
    assert problem_lines(data, source="w.yaml", text="name: x\n") == ["data.ticket: required to approve"]
    given = ErrorItem(line=0, column=0, path="inputs.n", message="expected a number, got 'x'")
    assert problem_lines(given, given={"n": "x"}) == ["-i n=x: input 'n': expected a number, got 'x'"]
