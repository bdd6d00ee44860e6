"""Inputs and outputs of ``exec/shell`` and ``exec/script``: what workflows write against."""

from __future__ import annotations

import shlex
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from waterflow_core.shellsafe import to_shell_string

DEFAULT_CAP = 64 * 1024
#: Most bytes of each of stdout and stderr a result may keep: both tails travel in the step result
#: (at most 1 MiB, a Temporal payload at most 2 MB) and the agent holds up to twice each in memory.
MAX_CAP = 256 * 1024
#: Bytes of ``stdin`` accepted: the value travels through Temporal (a payload is at most 2 MB)
#: and is held in memory twice on the agent; larger data belongs in a file.
MAX_STDIN = 1024 * 1024

# Values rendered from a single expression keep their type (a number, a boolean); environment
# variables, argv and stdin are text, coerced the way GitHub coerces values into strings.
Text = Annotated[str, BeforeValidator(lambda v: v if isinstance(v, str) else to_shell_string(v))]


def encode_text(text: str) -> bytes:
    """UTF-8, with lone surrogates (possible in JSON strings) replaced rather than failing."""
    return text.encode("utf-8", errors="replace")


class CommonInputs(BaseModel):
    """The inputs every exec node has."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    cwd: str | None = Field(
        None, description="Working directory; relative paths are resolved against the agent's step directory."
    )
    env: dict[str, Text] = Field(default_factory=dict, description="Extra environment variables for the command.")
    stdin: Text | None = Field(
        None, description=f"Text fed to the command's standard input (UTF-8, at most {MAX_STDIN} bytes)."
    )
    output_cap: int = Field(
        DEFAULT_CAP,
        alias="output-cap",
        ge=0,
        le=MAX_CAP,
        description=f"Bytes of stdout and of stderr kept in the result (the tail), at most {MAX_CAP}.",
    )

    @field_validator("stdin")
    @classmethod
    def _bounded(cls, value: str | None) -> str | None:
        if value is not None and len(encode_text(value)) > MAX_STDIN:
            raise ValueError(
                f"stdin is {len(encode_text(value))} bytes, more than the limit of {MAX_STDIN}; "
                "pass larger data through a file"
            )
        return value

    def stdin_bytes(self) -> bytes | None:
        """What the process reads on standard input (``None``: ``/dev/null``)."""
        return None if self.stdin is None else encode_text(self.stdin)


class ShellInputs(CommonInputs):
    """``with:`` of ``exec/shell``."""

    command: str = Field(description="The command text, run with `<shell> -c`.")
    shell: Literal["bash", "sh"] = Field("bash", description="bash (default) or POSIX sh.")


class ScriptInputs(CommonInputs):
    """``with:`` of ``exec/script``: inline ``script`` text or the ``path`` of a file on the agent."""

    script: str | None = Field(None, description="The script text; give exactly one of script and path.")
    path: str | None = Field(
        None, min_length=1, description="A script file on the agent, relative to cwd; instead of script."
    )
    interpreter: str | None = Field(
        None,
        description="bash, sh, or a command line the script path is appended to. Default: bash for "
        "script; for path, the file itself is executed (its #! line names the interpreter).",
    )
    args: list[Text] = Field(default_factory=list, description="Arguments passed after the script path.")

    @field_validator("interpreter")
    @classmethod
    def _command_line(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"interpreter is not a valid command line: {exc}") from None
        if not words:
            raise ValueError("interpreter is empty; leave it out to use the default")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ScriptInputs:
        if (self.script is None) == (self.path is None):
            raise ValueError("give exactly one of script (the script text) and path (a script file on the agent)")
        return self


class ExecOutputs(BaseModel):
    """Exit code, the tails of stdout/stderr, plus every name written to ``$WATERFLOW_OUTPUT``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    exit_code: int = Field(alias="exit-code", description="Exit status (128+N when killed by signal N).")
    stdout: str = Field("", description="Last output-cap bytes of standard output.")
    stderr: str = Field("", description="Last output-cap bytes of standard error.")
    truncated: bool = Field(False, description="True when stdout or stderr was longer than output-cap.")
