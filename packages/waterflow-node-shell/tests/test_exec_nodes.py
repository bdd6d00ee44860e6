"""exec/shell and exec/script against real bash/sh/python subprocesses."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from waterflow_core.node import NodeContext
from waterflow_core.plugins import PluginManager
from waterflow_core.registry import NodeRegistry
from waterflow_node_shell import ScriptNode, ShellNode
from waterflow_testing import LogRecorder, pid_alive, recording_context


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[NodeContext, LogRecorder]:
    return recording_context(tmp_path)


@pytest.fixture
def collect(recorded: tuple[NodeContext, LogRecorder]) -> LogRecorder:
    return recorded[1]


@pytest.fixture
def ctx(recorded: tuple[NodeContext, LogRecorder]) -> NodeContext:
    return recorded[0]


async def shell(ctx: NodeContext, command: str, **with_: object):
    node = ShellNode()
    return await node.run(ctx, ShellNode.Inputs.model_validate({"command": command, **with_}))


async def script(ctx: NodeContext, text: str, **with_: object):
    node = ScriptNode()
    return await node.run(ctx, ScriptNode.Inputs.model_validate({"script": text, **with_}))


async def script_path(ctx: NodeContext, path: str, **with_: object):
    node = ScriptNode()
    return await node.run(ctx, ScriptNode.Inputs.model_validate({"path": path, **with_}))


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


async def async_wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def test_stdout_exit_code_and_dump_by_alias(ctx: NodeContext, collect: LogRecorder) -> None:
    out = await shell(ctx, "echo hello; echo oops >&2")
    dumped = out.model_dump(by_alias=True)
    assert dumped["exit-code"] == 0
    assert dumped["stdout"] == "hello\n"
    assert dumped["stderr"] == "oops\n"
    assert dumped["truncated"] is False
    assert "hello" in collect.messages("stdout") and "oops" in collect.messages("stderr")


async def test_outputs_file_key_value_and_heredoc(ctx: NodeContext) -> None:
    out = await shell(
        ctx,
        'echo "version=1.2.3" >> "$WATERFLOW_OUTPUT"\n'
        'echo "empty=" >> "$WATERFLOW_OUTPUT"\n'
        "{ echo 'notes<<EOF_1'; echo 'line one'; echo 'a=b'; echo 'EOF_1'; } >> \"$WATERFLOW_OUTPUT\"\n"
        'echo "version=2.0.0" >> "$WATERFLOW_OUTPUT"\n',
    )
    dumped = out.model_dump(by_alias=True)
    assert dumped["version"] == "2.0.0"
    assert dumped["empty"] == ""
    assert dumped["notes"] == "line one\na=b"
    assert dumped["exit-code"] == 0


async def test_reserved_output_names_are_ignored(ctx: NodeContext, collect: LogRecorder) -> None:
    out = await shell(ctx, 'echo "stdout=forged" >> "$WATERFLOW_OUTPUT"; echo real')
    assert out.stdout == "real\n"
    assert any("reserved" in m for m in collect.messages())


async def test_unterminated_heredoc_in_outputs_fails_the_step(ctx: NodeContext) -> None:
    with pytest.raises(ApplicationError) as info:
        await shell(ctx, 'echo "x<<END" >> "$WATERFLOW_OUTPUT"; echo text >> "$WATERFLOW_OUTPUT"')
    assert info.value.type == "WaterflowStepFailed"
    assert "END" in info.value.message


async def test_nonzero_exit_fails_with_stderr_tail_and_details(ctx: NodeContext) -> None:
    with pytest.raises(ApplicationError) as info:
        await shell(ctx, 'echo "partial=yes" >> "$WATERFLOW_OUTPUT"; echo "it broke" >&2; exit 3')
    err = info.value
    assert err.type == "WaterflowStepFailed"
    assert err.message.startswith("command exited with code 3")
    assert "it broke" in err.message
    assert not err.non_retryable  # the step's retry policy decides
    details = err.details[0]
    assert details["exit-code"] == 3
    assert details["outputs"] == {"partial": "yes"}


async def test_errexit_and_pipefail_like_github(ctx: NodeContext) -> None:
    with pytest.raises(ApplicationError) as info:
        await shell(ctx, "false | true\necho not-reached")
    assert info.value.details[0]["exit-code"] == 1
    assert "not-reached" not in info.value.details[0]["stdout"]
    out = await shell(ctx, "false | true\necho reached", shell="sh")  # sh -e: no pipefail
    assert out.stdout == "reached\n"


async def test_killed_by_signal(ctx: NodeContext) -> None:
    with pytest.raises(ApplicationError) as info:
        await shell(ctx, "kill -9 $$")
    assert info.value.details[0]["exit-code"] == 137
    assert "signal 9" in info.value.message


async def test_lines_stream_while_the_command_runs(ctx: NodeContext, collect: LogRecorder, tmp_path: Path) -> None:
    go = tmp_path / "go"
    task = asyncio.create_task(
        shell(ctx, f'echo first; while [ ! -e "{go}" ]; do sleep 0.02; done; echo second')
    )
    assert await async_wait_until(lambda: "first" in collect.messages("stdout"))
    assert not task.done() and "second" not in collect.messages()
    go.touch()
    out = await task
    assert out.stdout == "first\nsecond\n"
    assert collect.messages("stdout") == ["first", "second"]


async def test_output_cap_keeps_the_tail(ctx: NodeContext, collect: LogRecorder) -> None:
    out = await shell(
        ctx,
        "head -c 300000 /dev/zero | tr '\\0' a; echo; echo END; head -c 5000 /dev/zero | tr '\\0' e >&2",
        **{"output-cap": 1000},
    )
    assert len(out.stdout.encode()) == 1000 and out.stdout.endswith("a\nEND\n")
    assert out.stderr == "e" * 1000
    assert out.truncated is True
    # Long lines are logged in pieces, never dropped.
    assert sum(len(m) for m in collect.messages("stdout") if set(m) == {"a"}) == 300000


async def test_cap_does_not_split_utf8(ctx: NodeContext) -> None:
    out = await shell(ctx, "for i in $(seq 200); do printf 'é'; done", **{"output-cap": 101})
    assert set(out.stdout) == {"é"}


async def test_cancellation_kills_the_whole_process_group(ctx: NodeContext, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = (
        f'sleep 1000 & echo $! >> "{pids}"\n'
        f"bash -c 'trap \"\" TERM; sleep 1000 & echo $! >> \"{pids}\"; wait' & echo $! >> \"{pids}\"\n"
        f'echo $$ >> "{pids}"\n'
        "sleep 1000\n"
    )
    task = asyncio.create_task(shell(ctx, command))
    assert await async_wait_until(lambda: pids.exists() and len(pids.read_text().split()) == 4)
    listed = [int(p) for p in pids.read_text().split()]
    assert all(pid_alive(p) for p in listed)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Includes the grandchild that ignores SIGTERM: it gets SIGKILL.
    assert wait_until(lambda: not any(map(pid_alive, listed)), timeout=10), [p for p in listed if pid_alive(p)]


async def test_background_child_holding_pipes_does_not_hang_the_step(ctx: NodeContext, tmp_path: Path) -> None:
    pidfile = tmp_path / "bg"
    started = time.monotonic()
    try:
        out = await shell(ctx, f'sleep 60 & echo $! > "{pidfile}"; echo done')
        assert out.stdout == "done\n"
        assert time.monotonic() - started < 10
        assert pid_alive(int(pidfile.read_text()))  # a daemon started by a step survives it
    finally:
        os.kill(int(pidfile.read_text()), 9)


async def test_cwd_relative_absolute_and_missing(ctx: NodeContext, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    assert (await shell(ctx, "pwd")).stdout.strip() == str(tmp_path)
    assert (await shell(ctx, "pwd", cwd="sub")).stdout.strip() == str(tmp_path / "sub")
    assert (await shell(ctx, "pwd", cwd=str(tmp_path / "sub"))).stdout.strip() == str(tmp_path / "sub")
    with pytest.raises(ApplicationError, match="does not exist"):
        await shell(ctx, "pwd", cwd="nope")


async def test_environment_layers(ctx: NodeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATERFLOW_SECRET_TOKEN", "agent-secret")
    monkeypatch.setenv("TEMPORAL_API_KEY", "agent-credential")
    monkeypatch.setenv("FROM_AGENT", "inherited")
    ctx.env = {"FROM_CTX": "ctx", "BOTH": "ctx"}
    out = await shell(
        ctx,
        'echo "$FROM_AGENT $FROM_CTX $BOTH $N $FLAG [${WATERFLOW_SECRET_TOKEN-}${TEMPORAL_API_KEY-}]"; '
        'test -f "$WATERFLOW_OUTPUT"',
        env={"BOTH": "step", "N": 2, "FLAG": True},
    )
    assert out.stdout == "inherited ctx step 2 true []\n"


async def test_shell_inputs_and_registration() -> None:
    assert ShellNode.shell_inputs == frozenset({"command"})
    assert ScriptNode.shell_inputs == frozenset({"script"})
    assert ScriptNode.literal_inputs == frozenset({"interpreter"})
    registry = NodeRegistry.from_plugins(PluginManager(allowlist=["shell"]))
    problems = registry.check_with("exec/script", {"script": "x", "interpreter": "python3 $<< inputs.f >>"})
    assert [path for path, _ in problems] == [("interpreter",)]
    assert registry.check_with("exec/script", {"script": "echo $<< inputs.f >>", "interpreter": "sh"}) == []
    found = {cls.type: info for cls, info in PluginManager(allowlist=["shell"]).nodes()}
    assert found["exec/shell"].distribution == "waterflow-node-shell"
    assert "exec/script" in found


async def test_script_with_bash_args_and_outputs(ctx: NodeContext) -> None:
    out = await script(
        ctx,
        '#!/bin/bash\necho "args: $1|$2|$#"\necho "first=$1" >> "$WATERFLOW_OUTPUT"\n',
        args=["a b", 7],
    )
    assert out.stdout == "args: a b|7|2\n"
    assert out.model_dump(by_alias=True)["first"] == "a b"


async def test_script_with_python_interpreter(ctx: NodeContext) -> None:
    out = await script(
        ctx,
        "import os, sys\nprint(sys.argv[1:])\nopen(os.environ['WATERFLOW_OUTPUT'], 'a').write('py=ok\\n')\n",
        interpreter=f"{sys.executable} -I",
        args=["x"],
    )
    assert out.stdout == "['x']\n"
    assert out.model_dump(by_alias=True)["py"] == "ok"


async def test_script_failure_and_expression_guard(ctx: NodeContext) -> None:
    with pytest.raises(ApplicationError) as info:
        await script(ctx, "echo nope >&2\nexit 4\n")
    assert info.value.details[0]["exit-code"] == 4
    with pytest.raises(ApplicationError) as info:
        await script(ctx, 'print("${WATERFLOW_EXPR_0}")', interpreter="python3")
    assert info.value.type == "WaterflowBadInput" and info.value.non_retryable


async def test_inputs_reject_unknown_keys() -> None:
    with pytest.raises(ValueError):
        ShellNode.Inputs.model_validate({"command": "x", "comand": "y"})


# -- exec/script by path, stdin ----------------------------------------------------------------


def write_script(path: Path, text: str, mode: int = 0o755) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


ARGV_PY = f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\nprint(sys.stdin.read(), end='')\n"


async def test_path_runs_the_file_itself_with_its_shebang(ctx: NodeContext, tmp_path: Path) -> None:
    write_script(tmp_path / "argv.py", ARGV_PY)
    out = await script_path(ctx, "argv.py", args=["a b", "--flag", 7])
    assert out.stdout == '["a b", "--flag", "7"]\n'


async def test_path_relative_to_cwd_with_an_interpreter(ctx: NodeContext, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    write_script(tmp_path / "bin" / "run.sh", 'echo "in $PWD: $1"\necho "seen=$1" >> "$WATERFLOW_OUTPUT"\n', 0o644)
    out = await script_path(ctx, "run.sh", cwd="bin", interpreter="bash", args=["x y"])
    assert out.stdout == f"in {tmp_path / 'bin'}: x y\n"
    assert out.model_dump(by_alias=True)["seen"] == "x y"


async def test_path_with_bash_interpreter_is_strict_like_inline_scripts(ctx: NodeContext, tmp_path: Path) -> None:
    write_script(tmp_path / "strict.sh", "false | true\necho not-reached\n", 0o644)
    with pytest.raises(ApplicationError) as info:
        await script_path(ctx, "strict.sh", interpreter="bash")
    assert info.value.type == "WaterflowStepFailed" and info.value.details[0]["exit-code"] == 1


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda d: None, "does not exist on this agent"),
        (lambda d: (d / "s.sh").mkdir(), "is a directory"),
        (lambda d: os.mkfifo(d / "s.sh"), "is not a regular file"),
        (lambda d: write_script(d / "s.sh", "#!/bin/sh\necho hi\n", 0o644), "is not executable"),
    ],
    ids=["missing", "directory", "fifo", "not-executable"],
)
async def test_unusable_path_is_a_bad_input_naming_it(ctx: NodeContext, tmp_path: Path, setup, expected: str) -> None:
    setup(tmp_path)
    with pytest.raises(ApplicationError) as info:
        await script_path(ctx, "s.sh")
    err = info.value
    assert err.type == "WaterflowBadInput" and err.non_retryable
    assert expected in err.message and f"'s.sh' ({tmp_path / 's.sh'})" in err.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file: unreadable needs a non-root user")
async def test_unreadable_path_is_a_bad_input(ctx: NodeContext, tmp_path: Path) -> None:
    write_script(tmp_path / "secret.sh", "echo hi\n", 0o311)
    with pytest.raises(ApplicationError, match="not readable"):
        await script_path(ctx, "secret.sh", interpreter="bash")


async def test_executable_without_shebang_or_interpreter_says_how_to_fix(ctx: NodeContext, tmp_path: Path) -> None:
    write_script(tmp_path / "bare", "echo hi\n")
    with pytest.raises(ApplicationError) as info:
        await script_path(ctx, str(tmp_path / "bare"))
    assert info.value.type == "WaterflowBadInput" and info.value.non_retryable
    assert str(tmp_path / "bare") in info.value.message and "#!" in info.value.message


async def test_missing_interpreter_is_a_bad_input(ctx: NodeContext, tmp_path: Path) -> None:
    with pytest.raises(ApplicationError) as info:
        await script(ctx, "echo hi", interpreter="no-such-interpreter-xyz -w")
    assert info.value.type == "WaterflowBadInput" and "no-such-interpreter-xyz" in info.value.message


async def test_a_path_can_never_become_an_interpreter_option(ctx: NodeContext, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(ApplicationError, match="does not exist"):
        await script_path(ctx, f"-cimport pathlib; pathlib.Path({str(marker)!r}).touch()", interpreter=sys.executable)
    assert not marker.exists()


async def test_stdin_reaches_every_exec_node(ctx: NodeContext, tmp_path: Path) -> None:
    payload = "line one\n'; rm -rf / ; $(touch x) é\n"
    assert (await shell(ctx, "cat", stdin=payload)).stdout == payload
    assert (await script(ctx, 'read -r first; echo "got $first"', stdin=payload)).stdout == "got line one\n"
    write_script(tmp_path / "argv.py", ARGV_PY)
    assert (await script_path(ctx, "argv.py", stdin=payload)).stdout == "[]\n" + payload
    assert (await shell(ctx, "cat", stdin={"a": [1, True]})).stdout == '{"a":[1,true]}'
    assert (await shell(ctx, "cat; echo end")).stdout == "end\n"  # no stdin: /dev/null, never a hang


async def test_script_inputs_are_checked() -> None:
    inputs = ScriptNode.Inputs
    with pytest.raises(ValueError, match="exactly one of script"):
        inputs.model_validate({"script": "x", "path": "y"})
    with pytest.raises(ValueError, match="exactly one of script"):
        inputs.model_validate({"args": ["x"]})
    with pytest.raises(ValueError, match="interpreter is empty"):
        inputs.model_validate({"script": "x", "interpreter": "  "})
    with pytest.raises(ValueError, match="not a valid command line"):
        inputs.model_validate({"script": "x", "interpreter": "python3 'unclosed"})
    with pytest.raises(ValueError, match="more than the limit of 1048576"):
        ShellNode.Inputs.model_validate({"command": "cat", "stdin": "é" * 600_000})
    registry = NodeRegistry.from_plugins(PluginManager(allowlist=["shell"]))
    assert registry.check_with("exec/script", {"path": "/opt/x.sh", "script": "echo"}) != []
    assert registry.check_with("exec/script", {"path": "$<< inputs.p >>", "args": ["$<< inputs.a >>"]}) == []
