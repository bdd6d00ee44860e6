"""The agent's contribution to the ``waterflow`` CLI (entry point group ``waterflow.cli``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from waterflow_core.hookspecs import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def waterflow_register_commands() -> list[click.Command]:
    """``waterflow agent``; imported lazily so ``waterflow --help`` stays fast."""
    from waterflow_agent.cli import agent_command

    return [agent_command]
