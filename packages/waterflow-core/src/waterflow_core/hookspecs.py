"""The pluggy hooks a Waterflow plugin implements.

Every hook takes no arguments and returns a list of *classes* (or click commands), hatch-style:
Waterflow decides when to instantiate them, so a plugin module stays cheap to import and the
registry can publish metadata (types, versions, schemas) without running anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # keep `import waterflow_core` free of click and pydantic
    import click

    from .node import Node
    from .providers import EventHandler, LogHandler, SecretProvider, ServerGroupProvider

PROJECT = "waterflow"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class WaterflowHookSpecs:
    """The hook specifications; plugins implement them as module-level ``@hookimpl`` functions."""

    @hookspec
    def waterflow_register_nodes(self) -> list[type[Node]]:
        """Return the node classes this plugin provides (entry point group ``waterflow.nodes``)."""
        raise NotImplementedError

    @hookspec
    def waterflow_register_commands(self) -> list[click.Command]:
        """Return click commands to add to the ``waterflow`` CLI (group ``waterflow.cli``)."""
        raise NotImplementedError

    @hookspec
    def waterflow_register_secret_providers(self) -> list[type[SecretProvider]]:
        """Return SecretProvider classes (group ``waterflow.providers``)."""
        raise NotImplementedError

    @hookspec
    def waterflow_register_log_handlers(self) -> list[type[LogHandler]]:
        """Return LogHandler classes (group ``waterflow.providers``)."""
        raise NotImplementedError

    @hookspec
    def waterflow_register_event_handlers(self) -> list[type[EventHandler]]:
        """Return EventHandler classes (group ``waterflow.providers``)."""
        raise NotImplementedError

    @hookspec
    def waterflow_register_server_group_providers(self) -> list[type[ServerGroupProvider]]:
        """Return ServerGroupProvider classes (group ``waterflow.providers``)."""
        raise NotImplementedError
