"""Provider interfaces (ServerGroupProvider, SecretProvider, EventHandler, LogHandler) and defaults.

A provider is a class with a ``name`` (what configuration selects it by) and a pydantic
``Options`` model (its configuration). Plugins return provider classes from the hooks in
:mod:`waterflow_core.hookspecs`; this module is itself registered as the built-in plugin, through
the same hooks, so the defaults are found exactly like third-party providers.
"""

from __future__ import annotations

import json
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from .hookspecs import hookimpl

if TYPE_CHECKING:  # keep this module (imported by every plugin lookup) free of temporalio
    from temporalio.client import Client

DEFAULT_EVENT_QUEUE_SIZE = 1000
"""Events a handler's queue holds before new ones are dropped (and counted)."""


class Provider(ABC):
    """Common base: ``name`` selects the class, ``Options`` validates its configuration."""

    name: ClassVar[str]
    #: The hook that returns classes of this kind (set on each provider interface).
    hook: ClassVar[str]

    class Options(BaseModel):
        """Configuration of the provider."""

        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: BaseModel | Mapping[str, Any] | None = None) -> None:
        self.options = self.Options.model_validate(
            options.model_dump() if isinstance(options, BaseModel) else dict(options or {})
        )


class ServerGroupProvider(Provider):
    """Answers which servers belong to a group (``runs-on``), e.g. for ``strategy.each-server``.

    The server hands every provider its Temporal ``client`` (the live agent registry lives
    there); providers that do not need it ignore it. A provider whose servers are not known to
    be live agents (an inventory) leaves ``lists_live_agents`` false: ``each-server`` then keeps
    only the servers with a live agent (docs/adr/0032-server-group-providers.md).
    """

    hook = "waterflow_register_server_group_providers"
    lists_live_agents: ClassVar[bool] = False

    def __init__(self, options: BaseModel | Mapping[str, Any] | None = None, *, client: Client | None = None) -> None:
        super().__init__(options)
        self.client = client

    @abstractmethod
    async def servers(self, group: str) -> list[dict[str, Any]]:
        """The servers of ``group``: dicts with at least ``name`` (the agent's personal queue)."""

    @abstractmethod
    async def groups(self) -> list[str]:
        """Every group name this provider knows."""


class SecretProvider(Provider):
    """Resolves secret names (``secrets.NAME``) to values, on the agent, right before a step."""

    hook = "waterflow_register_secret_providers"

    @abstractmethod
    async def get(self, name: str) -> str | None:
        """The value of secret ``name``, or None when this provider does not have it."""

    async def get_many(self, names: list[str]) -> dict[str, str]:
        """Values of the secrets that exist among ``names`` (override to batch round trips)."""
        found: dict[str, str] = {}
        for name in names:
            value = await self.get(name)
            if value is not None:
                found[name] = value
        return found


class EventHandler(Provider):
    """Receives run and step events (``run.started``, ``step.finished``, ``run.succeeded``, ...).

    The server calls ``handle`` for one event at a time, in the order events were published, from
    a dispatcher task of this handler's own (docs/adr/0031-run-events.md). Retry inside
    ``handle``; an exception means the event is given up (logged and counted).
    """

    hook = "waterflow_register_event_handlers"

    class Options(Provider.Options):
        """Every handler has its own bounded queue in the server (ADR 0031)."""

        model_config = ConfigDict(extra="forbid", populate_by_name=True)

        queue_size: int = Field(DEFAULT_EVENT_QUEUE_SIZE, alias="queue-size", ge=1, le=1_000_000)
        """Events waiting for this handler beyond which new ones are dropped (and counted)."""

    @abstractmethod
    async def handle(self, event: Mapping[str, Any]) -> None:
        """Handle one event: a JSON-ready mapping with at least ``type`` and ``workflow_id``."""

    async def close(self) -> None:
        """Release resources; called once at shutdown."""


class LogHandler(Provider):
    """Receives step log lines (JSON-ready mappings: ``workflow_id``, ``step``, ``ts``, ``message``...)."""

    hook = "waterflow_register_log_handlers"

    @abstractmethod
    async def emit(self, record: Mapping[str, Any]) -> None:
        """Store or forward one log line."""

    async def close(self) -> None:
        """Flush and release resources; called once at shutdown."""


# ---------------------------------------------------------------------------- defaults

_SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvSecretProvider(SecretProvider):
    """Secrets from ``WATERFLOW_SECRET_<NAME>`` environment variables, then from files.

    A file secret is ``<directory>/<NAME>`` (directory from option ``directory`` or
    ``WATERFLOW_SECRETS_DIR``), one trailing newline stripped. Names are case-insensitive, as in
    GitHub Actions: the upper-case spelling is tried after the exact one.
    """

    name = "env"

    class Options(SecretProvider.Options):
        prefix: str = "WATERFLOW_SECRET_"
        directory: Path | None = Field(
            default_factory=lambda: Path(d) if (d := os.environ.get("WATERFLOW_SECRETS_DIR")) else None
        )

    options: Options

    async def get(self, name: str) -> str | None:
        # The name becomes part of a path: refuse anything that could leave the directory.
        if not _SECRET_NAME.fullmatch(name):
            return None
        for candidate in dict.fromkeys((name, name.upper())):
            value = os.environ.get(self.options.prefix + candidate)
            if value is not None:
                return value
        if self.options.directory is not None:
            for candidate in dict.fromkeys((name, name.upper())):
                path = self.options.directory / candidate
                if path.is_file():
                    text = path.read_text(encoding="utf-8")
                    return text[:-1] if text.endswith("\n") else text
        return None


class JsonlLogHandler(LogHandler):
    """Appends each log record as one JSON line to ``path``."""

    name = "jsonl"

    class Options(LogHandler.Options):
        path: Path = Path("waterflow-logs.jsonl")

    options: Options

    _file: IO[str] | None = None

    async def emit(self, record: Mapping[str, Any]) -> None:
        if self._file is None:
            self.options.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.options.path.open("a", encoding="utf-8")
        # One write per line keeps lines whole when several processes append to the same file.
        self._file.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
        self._file.flush()

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class LogEventHandler(EventHandler):
    """Logs every event to the ``waterflow.events`` logger at INFO."""

    name = "log"

    class Options(EventHandler.Options):
        logger: str = "waterflow.events"

    options: Options

    async def handle(self, event: Mapping[str, Any]) -> None:
        logging.getLogger(self.options.logger).info(
            "%s %s", event.get("type", "event"), json.dumps(event, default=str, sort_keys=True)
        )


class AgentsServerGroupProvider(ServerGroupProvider):
    """Servers of a group = the live agents registered for it (``waterflow_core.agent_registry``)."""

    name = "agents"
    lists_live_agents = True

    async def servers(self, group: str) -> list[dict[str, Any]]:
        return [
            {"name": agent.name, "groups": list(agent.groups)}
            for agent in await self._agents()
            if group in agent.groups
        ]

    async def groups(self) -> list[str]:
        return sorted({group for agent in await self._agents() for group in agent.groups})

    async def _agents(self) -> list[Any]:
        if self.client is None:
            raise RuntimeError("the 'agents' server group provider needs the server's Temporal client")
        from .agent_registry import list_agents

        return await list_agents(self.client)


# The built-in plugin: this module is registered with the plugin manager like any other plugin.


@hookimpl
def waterflow_register_secret_providers() -> list[type[SecretProvider]]:
    return [EnvSecretProvider]


@hookimpl
def waterflow_register_log_handlers() -> list[type[LogHandler]]:
    return [JsonlLogHandler]


@hookimpl
def waterflow_register_event_handlers() -> list[type[EventHandler]]:
    from .webhook import WebhookEventHandler

    return [LogEventHandler, WebhookEventHandler]


@hookimpl
def waterflow_register_server_group_providers() -> list[type[ServerGroupProvider]]:
    from .inventory import InventoryServerGroupProvider

    return [AgentsServerGroupProvider, InventoryServerGroupProvider]
