"""Running one exec step: environment, scratch files, capture, outputs file and the failure."""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from temporalio.exceptions import ApplicationError

from waterflow_core.errors import ErrorCode
from waterflow_core.node import NodeContext, StepUser

from .errors import bad_input
from .models import CommonInputs, ExecOutputs
from .outputs import OutputFileError, parse_output_file
from .process import ProcessStartError, run_process
from .scratch import Scratch, ScratchFileError

MAX_OUTPUT_FILE = 1024 * 1024
STDERR_LINES_IN_ERROR = 20
# The agent's own configuration (secret provider settings, Temporal credentials) is not the
# step's business: strip it from the inherited environment.
PRIVATE_ENV_PREFIXES = ("WATERFLOW_", "TEMPORAL_")
RESERVED_OUTPUTS = frozenset({"exit-code", "exit_code", "stdout", "stderr", "truncated"})


async def execute(
    ctx: NodeContext,
    argv: Sequence[str],
    inputs: CommonInputs,
    *,
    cwd: Path,
    script: str | None = None,
    args: Sequence[str] = (),
) -> ExecOutputs:
    """Run ``argv`` (plus a temporary file holding ``script``, then ``args``) in ``cwd``."""
    with Scratch(ctx.step_user) as scratch:
        output_file = scratch.file("output")
        command = list(argv)
        if script is not None:
            command.append(str(scratch.file("script", script.encode("utf-8"))))
        command.extend(args)
        env = _environment(ctx, inputs.env, output_file)
        with ExitStack() as files:
            data = inputs.stdin_bytes()
            stdin = None if data is None else files.enter_context(scratch.file("stdin", data).open("rb"))
            try:
                result = await run_process(
                    command,
                    cwd=cwd,
                    env=env,
                    log=ctx.log,
                    heartbeat=ctx.heartbeat,
                    cap=inputs.output_cap,
                    stdin=stdin,
                )
            except ProcessStartError as exc:
                raise bad_input(_start_failure(exc, cwd, ctx.step_user)) from None
        user_outputs = _read_outputs(ctx, scratch, failed=result.exit_code != 0)
    values = {
        "exit-code": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "truncated": result.truncated,
    }
    if result.exit_code != 0:
        raise ApplicationError(
            _failure_message(result.exit_code, result.signal, result.stderr),
            {**values, "outputs": user_outputs},
            type=ErrorCode.STEP_FAILED,
        )
    return ExecOutputs.model_validate({**user_outputs, **values})


def _environment(ctx: NodeContext, step_env: Mapping[str, str], output_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PRIVATE_ENV_PREFIXES)}
    env.update(ctx.env)
    env.update(step_env)
    env["WATERFLOW_OUTPUT"] = str(output_file)
    return env


def _start_failure(exc: ProcessStartError, cwd: Path, user: StepUser | None) -> str:
    if exc.filename == str(cwd):
        message = f"cannot enter the working directory {str(cwd)!r}: {exc.strerror}"
    else:
        message = f"cannot start {exc.program!r}: {exc.strerror}"
    if exc.errno == errno.ENOEXEC:
        message += " (no #! line naming its interpreter: add one, or set interpreter)"
    elif exc.errno in (errno.EACCES, errno.EPERM) and user is not None:
        message += f" (steps run as {user.name})"
    return message


def _read_outputs(ctx: NodeContext, scratch: Scratch, *, failed: bool) -> dict[str, Any]:
    try:
        data = scratch.read("output", MAX_OUTPUT_FILE)
        parsed = parse_output_file(data.decode("utf-8", errors="replace"))
    except (OSError, OutputFileError, ScratchFileError) as exc:
        if failed:  # the exit code is the story; do not mask it with an outputs problem
            return {}
        raise ApplicationError(f"invalid $WATERFLOW_OUTPUT file: {exc}", type=ErrorCode.STEP_FAILED) from exc
    for key in RESERVED_OUTPUTS & parsed.keys():
        ctx.log.warning("output %r is reserved by exec nodes; the value written to $WATERFLOW_OUTPUT is ignored", key)
        del parsed[key]
    return parsed


def _failure_message(code: int, sig: int | None, stderr: str) -> str:
    head = f"command was killed by signal {sig} (exit code {code})" if sig else f"command exited with code {code}"
    tail = stderr.rstrip("\n").split("\n")[-STDERR_LINES_IN_ERROR:] if stderr.strip() else []
    return "\n".join([head, *tail])
