"""Settings of one ``waterflow server`` process."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from waterflow_core.runs import SERVER_TASK_QUEUE
from waterflow_core.temporal import TemporalSettings

from .api.auth import ApiToken
from .api.streams import DEFAULT_MAX_SECONDS, DEFAULT_PER_CLIENT, DEFAULT_TOTAL
from .api.validation import DEFAULT_BUDGET_SECONDS, DEFAULT_QUEUE, DEFAULT_WORKERS
from .defaults import DEFAULT_HOST, DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT
from .providers_config import DEFAULT_SERVER_GROUPS, ProviderChoice

if TYPE_CHECKING:
    from .hooks_config import Hook


@dataclass
class ServerSettings:
    """Where the API listens, where Temporal is, and the request limits.

    The server keeps no state of its own: everything here is configuration, so any number of
    servers with the same settings are interchangeable.
    """

    temporal: TemporalSettings = field(default_factory=TemporalSettings.from_env)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    task_queue: str = SERVER_TASK_QUEUE
    """Task queue of the interpreter workflow worker this server hosts."""
    run_worker: bool = True
    """Host the interpreter workflow worker in this process (turn off for an API-only replica)."""
    follow_poll_seconds: float = 0.5
    """How often ``GET /v1/workflows/{id}/logs?follow=true`` polls the run for news."""
    validation_workers: int = DEFAULT_WORKERS
    """Workflow validations run at once (ADR 0023)."""
    validation_queue: int = DEFAULT_QUEUE
    """Validations that may wait for a slot; beyond, requests get 503."""
    validation_budget_seconds: float = DEFAULT_BUDGET_SECONDS
    """How long one validation may take before it is answered with 422 ``too_complex``."""
    streams_per_client: int = DEFAULT_PER_CLIENT
    """Follow streams one client address may have open at once."""
    streams_total: int = DEFAULT_TOTAL
    """Follow streams open on the server at once."""
    stream_max_seconds: float = DEFAULT_MAX_SECONDS
    """How long a follow stream lasts before it tells the client to reconnect."""
    temporal_ui_url: str | None = None
    """Shown by ``GET /healthz`` and ``GET /v1/console`` so users can find the run in Temporal's own UI."""
    tokens: tuple[ApiToken, ...] = ()
    """Bearer tokens the API accepts; empty means authentication is off (loopback or ``--insecure``)."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names (besides loopback names, IP literals and the bind address) the API answers to; ``*`` for any."""
    allowed_origins: tuple[str, ...] = ()
    """Web origins (``https://ui.example``) allowed besides the server itself."""
    event_handlers: tuple[ProviderChoice, ...] = ()
    """EventHandlers the hosted worker delivers run events to (``--event-handler``; ADR 0031)."""
    event_spool: Path | None = None
    """Directory keeping the event handlers' queues on disk, so a crash of the server loses no event."""
    server_groups: ProviderChoice = field(default_factory=lambda: ProviderChoice(DEFAULT_SERVER_GROUPS))
    """The ServerGroupProvider ``strategy.each-server`` asks (``--server-groups``; ADR 0032)."""
    hooks: Mapping[str, Hook] = field(default_factory=dict)
    """Inbound webhooks by name, from the hooks file (``--hooks``; ADR 0037)."""

    @property
    def base_url(self) -> str:
        """The URL clients use to reach this server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
