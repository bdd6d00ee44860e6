"""The ``exec/shell`` and ``exec/script`` nodes."""

from __future__ import annotations

import shlex

from waterflow_core.expressions import CLOSE, OPEN
from waterflow_core.node import Node, NodeContext
from waterflow_core.shellsafe import DEFAULT_PREFIX

from .errors import bad_input
from .execution import execute
from .models import ExecOutputs, ScriptInputs, ShellInputs
from .paths import resolve_cwd, script_file

SHELLS: dict[str, list[str]] = {
    # GitHub Actions' defaults: no rc files, stop at the first failing command or pipeline stage.
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"],
    "sh": ["sh", "-e"],
}


def interpreter_argv(interpreter: str) -> list[str]:
    """``bash``/``sh`` with their strict options, or the command line split like a shell would."""
    return SHELLS.get(interpreter) or shlex.split(interpreter)


class ShellNode(Node):
    """Run a command with bash (``-eo pipefail``, no rc files) or sh."""

    type = "exec/shell"
    version = "1.0.0"
    description = "Run a shell command; $<< >> values reach it as environment variables."
    shell_inputs = frozenset({"command"})

    class Inputs(ShellInputs):
        """``with:`` of ``exec/shell`` (see :class:`ShellInputs`)."""

    # Both exec nodes share one outputs model; mypy sees the base's nested class as fixed.
    Outputs = ExecOutputs  # type: ignore[assignment]

    async def run(self, ctx: NodeContext, inputs: ShellInputs) -> ExecOutputs:
        argv = [*SHELLS[inputs.shell], "-c", inputs.command, inputs.shell]
        return await execute(ctx, argv, inputs, cwd=resolve_cwd(ctx.workdir, inputs.cwd))


class ScriptNode(Node):
    """Run inline script text (written to a private temporary file) or a script file on the agent."""

    type = "exec/script"
    version = "1.0.0"
    description = "Run a script, inline or a file on the agent, with bash, sh or any interpreter."
    shell_inputs = frozenset({"script"})
    # An expression in the interpreter line could add arguments (`-c ...`) after shlex.split.
    literal_inputs = frozenset({"interpreter"})

    class Inputs(ScriptInputs):
        """``with:`` of ``exec/script`` (see :class:`ScriptInputs`)."""

    # Both exec nodes share one outputs model; mypy sees the base's nested class as fixed.
    Outputs = ExecOutputs  # type: ignore[assignment]

    async def run(self, ctx: NodeContext, inputs: ScriptInputs) -> ExecOutputs:
        cwd = resolve_cwd(ctx.workdir, inputs.cwd)
        if inputs.path is not None:
            # Without an interpreter the kernel runs the file and honours its #! line, as a shell would.
            file = script_file(cwd, inputs.path, executable=inputs.interpreter is None)
            launcher = [] if inputs.interpreter is None else interpreter_argv(inputs.interpreter)
            return await execute(ctx, [*launcher, str(file)], inputs, cwd=cwd, args=inputs.args)
        script, interpreter = inputs.script or "", inputs.interpreter or "bash"
        if interpreter not in SHELLS and "${" + DEFAULT_PREFIX in script:
            # Expressions in `script` become bash variable references, meaningless to other languages.
            raise bad_input(
                f"{OPEN} {CLOSE} expressions in script only work with bash or sh; with {interpreter!r} "
                "pass values through env: or args: and read them from the environment or argv"
            )
        return await execute(ctx, interpreter_argv(interpreter), inputs, cwd=cwd, script=script, args=inputs.args)
