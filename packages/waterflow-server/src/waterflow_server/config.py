"""The configuration models of ``waterflow server`` and ``waterflow dev`` (ADR 0035).

Layers: defaults < the TOML file (``--config FILE`` or ``WATERFLOW_CONFIG``) < environment
variables < flags. ``docs/reference/configuration.md`` is generated from these models
(``python -m waterflow_server.config_doc``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from waterflow_core.config import ByteCount, Seconds, env
from waterflow_core.config_sections import LoggingSection, TemporalSection
from waterflow_core.runs import SERVER_TASK_QUEUE

from .api.streams import DEFAULT_MAX_SECONDS, DEFAULT_PER_CLIENT, DEFAULT_TOTAL
from .api.validation import DEFAULT_BUDGET_SECONDS, DEFAULT_QUEUE, DEFAULT_WORKERS
from .defaults import DEFAULT_HOST, DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT

__all__ = ["DevConfig", "ServerConfig"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiSection(_Section):
    """``[api]``: where the API listens."""

    host: str = Field(default=DEFAULT_HOST, description="Interface to listen on.")
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535, description="TCP port (0: any free port).")
    run_worker: bool = Field(
        default=True, description="Host the interpreter workflow worker (false: an API-only replica; flag --no-worker)."
    )
    task_queue: str = Field(
        default=SERVER_TASK_QUEUE,
        min_length=1,
        max_length=200,
        description="Task queue of the interpreter worker; the runs this server starts go there. Servers on one "
        "Temporal namespace share runs only when they share it, so give servers with other providers or event "
        "handlers their own.",
    )


class AccessSection(_Section):
    """``[access]``: authentication and cross-site protection (ADR 0024)."""

    token: SecretStr | None = Field(
        default=None,
        description="One operator API token (at least 16 characters), named 'default'.",
        json_schema_extra=env("WATERFLOW_API_TOKEN"),
    )
    token_file: Path | None = Field(
        default=None,
        description="File of API tokens, one '<name> <read|operator> <token>' per line (mode 600).",
        json_schema_extra=env("WATERFLOW_API_TOKEN_FILE"),
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the API answers to besides loopback names, IP literals and api.host; '*' for any.",
        json_schema_extra=env("WATERFLOW_ALLOWED_HOSTS"),
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Web origins (https://ui.example) allowed to call the API besides the server itself.",
        json_schema_extra=env("WATERFLOW_ALLOWED_ORIGINS"),
    )
    insecure: bool = Field(
        default=False,
        description="Serve on a non-loopback address without authentication (only behind a firewall or proxy).",
        json_schema_extra=env(None),
    )


class LimitsSection(_Section):
    """``[limits]``: request bounds (ADR 0023)."""

    max_body_bytes: ByteCount = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        ge=1024,
        description="Largest request body accepted (1MiB); bigger ones get 413.",
    )
    validation_workers: int = Field(default=DEFAULT_WORKERS, ge=1, description="Workflow validations run at once.")
    validation_queue: int = Field(
        default=DEFAULT_QUEUE, ge=0, description="Validations that may wait for a slot; past that requests get 503."
    )
    validation_budget: Seconds = Field(
        default=DEFAULT_BUDGET_SECONDS, gt=0, description="Seconds one validation may take before 422 too_complex."
    )
    streams_per_client: int = Field(
        default=DEFAULT_PER_CLIENT, ge=1, description="Follow streams one client address may have open (429 beyond)."
    )
    streams_total: int = Field(
        default=DEFAULT_TOTAL, ge=1, description="Follow streams open on the server (429 beyond)."
    )
    stream_max_duration: Seconds = Field(
        default=DEFAULT_MAX_SECONDS,
        gt=0,
        description="Seconds a follow stream lasts before it asks the client to reconnect.",
    )
    follow_poll: Seconds = Field(default=0.5, gt=0, description="Seconds between a follow stream's polls of the run.")


class EventsSection(_Section):
    """``[events]``: event handlers (ADR 0031)."""

    handlers: list[str] = Field(
        default_factory=lambda: ["log"],
        description="Event handlers receiving run and step events: 'log', 'webhook' or a plugin's.",
        json_schema_extra=env("WATERFLOW_EVENT_HANDLERS"),
    )
    spool: Path | None = Field(
        default=None,
        description="Directory keeping the event queues on disk, so events outlive a server crash.",
        json_schema_extra=env("WATERFLOW_EVENT_SPOOL"),
    )
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Options per handler ([events.options.webhook] url = ...); also --event-option "
        "HANDLER.KEY=VALUE and WATERFLOW_EVENT_<HANDLER>_<KEY>.",
    )


class ServerGroupsSection(_Section):
    """``[server_groups]``: the server group provider strategy.each-server asks (ADR 0032)."""

    provider: str | None = Field(
        default=None,
        description="'agents' (live agents, the default), 'inventory' (the default when inventory is set) "
        "or a plugin's.",
        json_schema_extra=env("WATERFLOW_SERVER_GROUPS"),
    )
    inventory: Path | None = Field(
        default=None,
        description="Inventory file (YAML) of the 'inventory' provider.",
        json_schema_extra=env("WATERFLOW_INVENTORY"),
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Options of the provider; also --server-groups-option KEY=VALUE."
    )


class ConsoleSection(_Section):
    """``[console]``: the web console at ``/ui`` (ADR 0042)."""

    temporal_ui_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Base URL of the Temporal UI (http://temporal-ui:8080): the console and /healthz link runs "
        "to it. waterflow dev sets its own Temporal UI's.",
    )


class ServerConfig(BaseModel):
    """Everything ``waterflow server`` is configured with."""

    model_config = ConfigDict(extra="forbid")

    temporal: TemporalSection = Field(default_factory=TemporalSection)
    api: ApiSection = Field(default_factory=ApiSection)
    access: AccessSection = Field(default_factory=AccessSection)
    limits: LimitsSection = Field(default_factory=LimitsSection)
    events: EventsSection = Field(default_factory=EventsSection)
    server_groups: ServerGroupsSection = Field(default_factory=ServerGroupsSection)
    console: ConsoleSection = Field(default_factory=ConsoleSection)
    logging: LoggingSection = Field(default_factory=LoggingSection)


class DevSection(_Section):
    """``[dev]``: the embedded Temporal and the local agent of ``waterflow dev``."""

    data_dir: Path = Field(
        default=Path(".waterflow"), description="Where Temporal's SQLite file, the agent's workdir and logs live."
    )
    temporal_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port of the embedded Temporal (default 7233, or the last one used)."
    )
    ui_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port of the Temporal UI (default 8233, or the last one used)."
    )
    headless: bool = Field(default=False, description="Do not start the Temporal UI.")
    retention: Seconds = Field(
        default=30 * 86400.0, ge=3600, description="Seconds (or 30d, 12h...) finished runs are kept."
    )
    agent: bool = Field(default=True, description="Start the local agent (flag --no-agent).")
    agent_name: str = Field(default="local", description="Name of the local agent.")
    agent_groups: list[str] = Field(default_factory=lambda: ["local"], description="Server groups of the local agent.")


class DevConfig(ServerConfig):
    """Everything ``waterflow dev`` is configured with: the server's settings plus ``[dev]``.

    ``temporal.address`` set by any layer means: use that Temporal instead of starting one.
    """

    dev: DevSection = Field(default_factory=DevSection)
