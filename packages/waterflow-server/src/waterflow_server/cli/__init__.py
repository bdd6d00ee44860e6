"""The ``waterflow server``, ``dev`` and ``config`` subcommands, contributed to the ``waterflow`` CLI.

Registered under the ``waterflow.cli`` entry point group; importing this module only imports
click, so ``waterflow --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from waterflow_core.hookspecs import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def waterflow_register_commands() -> list[click.Command]:
    """``server``, ``dev`` and ``config``."""
    from .config_show import config_command
    from .dev import dev_command
    from .server import server_command

    return [server_command, dev_command, config_command]
