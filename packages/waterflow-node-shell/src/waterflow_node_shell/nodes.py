"""The ``exec/shell`` and ``exec/script`` nodes."""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from temporalio.exceptions import ApplicationError

from waterflow_core.expressions import CLOSE, OPEN
from waterflow_core.node import Node, NodeContext
from waterflow_core.shellsafe import DEFAULT_PREFIX, to_shell_string

from .outputs import OutputFileError, parse_output_file
from .process import run_process

ERROR_STEP_FAILED = "WaterflowStepFailed"
ERROR_BAD_INPUT = "WaterflowBadInput"
DEFAULT_CAP = 64 * 1024
MAX_OUTPUT_FILE = 1024 * 1024
STDERR_LINES_IN_ERROR = 20
# The agent's own configuration (secret provider settings, Temporal credentials) is not the
# step's business: strip it from the inherited environment.
PRIVATE_ENV_PREFIXES = ("WATERFLOW_", "TEMPORAL_")
RESERVED_OUTPUTS = frozenset({"exit-code", "exit_code", "stdout", "stderr", "truncated"})
SHELLS: dict[str, list[str]] = {
    # GitHub Actions' defaults: no rc files, stop at the first failing command or pipeline stage.
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"],
    "sh": ["sh", "-e"],
}

# Values rendered from a single expression keep their type (a number, a boolean); environment
# variables and argv are text, coerced the way GitHub coerces values into strings.
Text = Annotated[str, BeforeValidator(lambda v: v if isinstance(v, str) else to_shell_string(v))]


class _CommonInputs(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    cwd: str | None = Field(
        None, description="Working directory; relative paths are resolved against the agent's step directory."
    )
    env: dict[str, Text] = Field(default_factory=dict, description="Extra environment variables for the command.")
    output_cap: int = Field(
        DEFAULT_CAP,
        alias="output-cap",
        ge=0,
        description="Bytes of stdout and of stderr kept in the result (the tail).",
    )


class ExecOutputs(BaseModel):
    """Exit code, the tails of stdout/stderr, plus every name written to ``$WATERFLOW_OUTPUT``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    exit_code: int = Field(alias="exit-code", description="Exit status (128+N when killed by signal N).")
    stdout: str = Field("", description="Last output-cap bytes of standard output.")
    stderr: str = Field("", description="Last output-cap bytes of standard error.")
    truncated: bool = Field(False, description="True when stdout or stderr was longer than output-cap.")


class ShellNode(Node):
    """Run a command with bash (``-eo pipefail``, no rc files) or sh."""

    type = "exec/shell"
    version = "1.0.0"
    description = "Run a shell command; $<< >> values reach it as environment variables."
    shell_inputs = frozenset({"command"})

    class Inputs(_CommonInputs):
        command: str = Field(description="The command text, run with `<shell> -c`.")
        shell: Literal["bash", "sh"] = Field("bash", description="bash (default) or POSIX sh.")

    # Both exec nodes share one outputs model; mypy sees the base's nested class as fixed.
    Outputs = ExecOutputs  # type: ignore[assignment]

    async def run(self, ctx: NodeContext, inputs: Inputs) -> ExecOutputs:
        argv = [*SHELLS[inputs.shell], "-c", inputs.command, inputs.shell]
        return await execute(ctx, argv, inputs)


class ScriptNode(Node):
    """Write a script to a temporary file and run it with an interpreter."""

    type = "exec/script"
    version = "1.0.0"
    description = "Run a script with bash, sh or any interpreter (python3, node, ...)."
    shell_inputs = frozenset({"script"})
    # An expression in the interpreter line could add arguments (`-c ...`) after shlex.split.
    literal_inputs = frozenset({"interpreter"})

    class Inputs(_CommonInputs):
        script: str = Field(description="The script text.")
        interpreter: str = Field("bash", description="bash, sh, or a command line the script path is appended to.")
        args: list[Text] = Field(default_factory=list, description="Arguments passed after the script path.")

    # Both exec nodes share one outputs model; mypy sees the base's nested class as fixed.
    Outputs = ExecOutputs  # type: ignore[assignment]

    async def run(self, ctx: NodeContext, inputs: Inputs) -> ExecOutputs:
        interpreter = SHELLS.get(inputs.interpreter) or shlex.split(inputs.interpreter)
        if inputs.interpreter not in SHELLS and "${" + DEFAULT_PREFIX in inputs.script:
            # Expressions in `script` become bash variable references, meaningless to other languages.
            raise ApplicationError(
                f"{OPEN} {CLOSE} expressions in script only work with bash or sh; with {inputs.interpreter!r} "
                "pass values through env: or args: and read them from the environment or argv",
                type=ERROR_BAD_INPUT,
                non_retryable=True,
            )
        return await execute(ctx, interpreter, inputs, script=inputs.script, args=inputs.args)


async def execute(
    ctx: NodeContext,
    argv: list[str],
    inputs: _CommonInputs,
    *,
    script: str | None = None,
    args: list[str] = (),  # type: ignore[assignment]
) -> ExecOutputs:
    """Run ``argv`` (plus the script file and ``args``) the way every ``exec/*`` node does."""
    cwd = _resolve_cwd(ctx, inputs.cwd)
    scratch = Path(tempfile.mkdtemp(prefix="waterflow-step-"))  # 0700: the script may hold secrets
    try:
        output_file = scratch / "output"
        output_file.touch()
        if script is not None:
            script_file = scratch / "script"
            script_file.touch(mode=0o600)
            script_file.write_text(script, encoding="utf-8")
            argv = [*argv, str(script_file), *args]
        env = _environment(ctx, inputs.env, output_file)
        result = await run_process(
            argv, cwd=cwd, env=env, log=ctx.log, heartbeat=ctx.heartbeat, cap=inputs.output_cap
        )
        user_outputs = _read_outputs(ctx, output_file, failed=result.exit_code != 0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    values = {
        "exit-code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr, "truncated": result.truncated
    }
    if result.exit_code != 0:
        raise ApplicationError(
            _failure_message(result.exit_code, result.signal, result.stderr),
            {**values, "outputs": user_outputs},
            type=ERROR_STEP_FAILED,
        )
    return ExecOutputs.model_validate({**user_outputs, **values})


def _resolve_cwd(ctx: NodeContext, cwd: str | None) -> Path:
    path = Path(ctx.workdir) if cwd is None else Path(ctx.workdir) / Path(cwd).expanduser()
    if not path.is_dir():
        raise ApplicationError(f"working directory {str(path)!r} does not exist", type=ERROR_STEP_FAILED)
    return path


def _environment(ctx: NodeContext, step_env: Mapping[str, str], output_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PRIVATE_ENV_PREFIXES)}
    env.update(ctx.env)
    env.update(step_env)
    env["WATERFLOW_OUTPUT"] = str(output_file)
    return env


def _read_outputs(ctx: NodeContext, path: Path, *, failed: bool) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_OUTPUT_FILE:
            raise OutputFileError(f"larger than {MAX_OUTPUT_FILE} bytes")
        parsed = parse_output_file(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, OutputFileError) as exc:
        if failed:  # the exit code is the story; do not mask it with an outputs problem
            return {}
        raise ApplicationError(f"invalid $WATERFLOW_OUTPUT file: {exc}", type=ERROR_STEP_FAILED) from exc
    for key in RESERVED_OUTPUTS & parsed.keys():
        ctx.log.warning("output %r is reserved by exec nodes; the value written to $WATERFLOW_OUTPUT is ignored", key)
        del parsed[key]
    return parsed


def _failure_message(code: int, sig: int | None, stderr: str) -> str:
    head = f"command was killed by signal {sig} (exit code {code})" if sig else f"command exited with code {code}"
    tail = stderr.rstrip("\n").split("\n")[-STDERR_LINES_IN_ERROR:] if stderr.strip() else []
    return "\n".join([head, *tail])
