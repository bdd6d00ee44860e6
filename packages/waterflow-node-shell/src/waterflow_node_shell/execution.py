"""Running one exec step: environment, scratch files, capture, outputs file and the failure."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from temporalio.exceptions import ApplicationError

from waterflow_core.errors import ErrorCode
from waterflow_core.node import NodeContext

from .errors import bad_input
from .models import CommonInputs, ExecOutputs
from .outputs import OutputFileError, parse_output_file
from .process import ProcessStartError, run_process

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
    scratch = Path(tempfile.mkdtemp(prefix="waterflow-step-"))  # 0700: script and stdin may hold secrets
    try:
        output_file = scratch / "output"
        output_file.touch()
        command = list(argv)
        if script is not None:
            command.append(str(_private_file(scratch / "script", script.encode("utf-8"))))
        command.extend(args)
        env = _environment(ctx, inputs.env, output_file)
        with ExitStack() as files:
            data = inputs.stdin_bytes()
            stdin = None if data is None else files.enter_context(_private_file(scratch / "stdin", data).open("rb"))
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
                raise bad_input(_start_failure(exc)) from None
        user_outputs = _read_outputs(ctx, output_file, failed=result.exit_code != 0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
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


def _private_file(path: Path, data: bytes) -> Path:
    path.touch(mode=0o600)
    path.write_bytes(data)
    return path


def _environment(ctx: NodeContext, step_env: Mapping[str, str], output_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PRIVATE_ENV_PREFIXES)}
    env.update(ctx.env)
    env.update(step_env)
    env["WATERFLOW_OUTPUT"] = str(output_file)
    return env


def _start_failure(exc: ProcessStartError) -> str:
    message = f"cannot start {exc.program!r}: {exc.strerror}"
    if exc.errno == errno.ENOEXEC:
        message += " (no #! line naming its interpreter: add one, or set interpreter)"
    return message


def _read_outputs(ctx: NodeContext, path: Path, *, failed: bool) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_OUTPUT_FILE:
            raise OutputFileError(f"larger than {MAX_OUTPUT_FILE} bytes")
        parsed = parse_output_file(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, OutputFileError) as exc:
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
