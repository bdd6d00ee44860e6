"""The agent's settings: :class:`AgentConfig` as it runs (built by the CLI, tests or embedders) and
:class:`AgentProcessConfig`, the layered configuration of ``waterflow agent`` it is built from.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from waterflow_core.agent_registry import DEFAULT_HEARTBEAT_INTERVAL, personal_queue
from waterflow_core.config import PUBLIC_TABLE, ByteCount, Seconds, env
from waterflow_core.config_sections import LoggingSection, TemporalSection
from waterflow_core.temporal import TemporalSettings

from .steplog import DEFAULT_BURST, DEFAULT_RATE


def _queue_safe(name: str) -> str:
    # The name becomes part of a task queue and a workflow id.
    if any(ch.isspace() for ch in name) or "/" in name:
        raise ValueError("agent name must not contain whitespace or '/'")
    return name


class AgentConfig(BaseModel):
    """Everything an :class:`~waterflow_agent.runtime.Agent` needs to run."""

    name: str = Field(min_length=1)
    groups: list[str] = Field(default_factory=list)
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    workdir: Path = Path(".waterflow/agent")
    max_concurrent: int = Field(default=10, ge=1)
    """Steps run at once per polled queue (Temporal's ``max_concurrent_activities``)."""
    grace: timedelta = timedelta(seconds=30)
    """On SIGTERM, how long running steps may continue before they are cancelled."""
    heartbeat_interval: timedelta = DEFAULT_HEARTBEAT_INTERVAL
    """How often the agent heartbeats its registration."""
    reload_watch: bool = True
    """Hot reload on file events (watchfiles) in the plugin directories; else polling only."""
    reload_poll_interval: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0))
    """How often installed node packages are re-read regardless of events (hot reload safety net)."""
    secret_provider: str = "env"  # noqa: S105 - a provider name, not a secret
    log_handler: str | None = "jsonl"
    """LogHandler that receives every step log line (``None`` disables shipping)."""
    facts: dict[str, str] = Field(default_factory=dict)
    run_as: str | None = None
    """User (name or uid) whose rights the processes of steps get; the agent must run as root."""
    allow_run_as: list[str] = Field(default_factory=list)
    """Users a step's ``run-as:`` may name (none by default); the agent must run as root."""
    run_secrets_ttl: timedelta = Field(default=timedelta(hours=24), gt=timedelta(0))
    """How long after a run's last step on this agent its secrets are still masked in its steps."""
    step_log_rate: int = Field(default=DEFAULT_RATE, ge=0)
    """Bytes a second each step may log (lines beyond are dropped and counted; 0: no limit)."""
    step_log_burst: int = Field(default=DEFAULT_BURST, ge=64 * 1024)
    """Bytes a step may log at once before the rate applies."""

    @field_validator("name")
    @classmethod
    def _name_is_queue_safe(cls, value: str) -> str:
        return _queue_safe(value)

    @field_validator("groups")
    @classmethod
    def _dedupe_groups(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(g for g in value if g))

    @property
    def personal_queue(self) -> str:
        """The queue only this agent polls."""
        return personal_queue(self.name)

    @property
    def queues(self) -> list[str]:
        """Every task queue the agent polls: its groups, then its personal queue."""
        return [*self.groups, self.personal_queue]


class AgentSection(BaseModel):
    """``[agent]``: who the agent is, what it serves, and how its steps run."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None,
        min_length=1,
        description="Agent name, unique per agent (its personal queue is agent:<name>) [default: the host name].",
    )
    groups: list[str] = Field(
        default_factory=list, description="Server groups served (the task queues a job's runs-on names)."
    )
    workdir: Path | None = Field(
        default=None, description="Working directory of steps [default .waterflow/agent/<name>]."
    )
    max_concurrent: int = Field(default=10, ge=1, description="Steps run at once, per polled queue.")
    grace: Seconds = Field(default=30.0, ge=0, description="On SIGTERM, seconds running steps may take to finish.")
    heartbeat_interval: Seconds = Field(
        default=DEFAULT_HEARTBEAT_INTERVAL.total_seconds(), gt=0, description="Seconds between registration refreshes."
    )
    reload_watch: bool = Field(default=True, description="Hot reload on file events in the plugin directories.")
    reload_poll_interval: Seconds = Field(
        default=30.0, gt=0, description="Seconds between re-reads of installed node packages (hot reload safety net)."
    )
    run_as: str | None = Field(
        default=None, description="Start steps' processes as this user (name or uid); the agent must run as root."
    )
    allow_run_as: list[str] = Field(
        default_factory=list,
        description="Users a step's run-as: may name (none by default); the agent must run as root.",
    )
    run_secrets_ttl: Seconds = Field(
        default=86400.0, gt=0, description="Seconds a run's secrets stay masked in its later steps here."
    )
    step_log_rate: ByteCount = Field(
        default=DEFAULT_RATE,
        ge=0,
        description="Bytes a second each step may log (beyond: dropped, counted); 0: no limit.",
    )
    step_log_burst: ByteCount = Field(
        default=DEFAULT_BURST, ge=64 * 1024, description="Bytes a step may log at once before step_log_rate applies."
    )
    facts: dict[str, str] = Field(
        default_factory=dict,
        description="Extra host facts published as server.facts.KEY.",
        json_schema_extra=PUBLIC_TABLE,
    )

    @field_validator("name")
    @classmethod
    def _name_is_queue_safe(cls, value: str | None) -> str | None:
        return None if value is None else _queue_safe(value)

    @model_validator(mode="after")
    def _name_defaults_to_host(self) -> AgentSection:
        if self.name is None:
            self.name = socket.gethostname()
        return self


class SecretsSection(BaseModel):
    """``[secrets]``: the SecretProvider that resolves ``secrets.NAME``."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(
        default="env", description="SecretProvider name.", json_schema_extra=env("WATERFLOW_SECRET_PROVIDER")
    )
    options: dict[str, str] = Field(default_factory=dict, description="Options of the secret provider.")


class StepLogsSection(BaseModel):
    """``[step_logs]``: the LogHandler shipping every step log line."""

    model_config = ConfigDict(extra="forbid")

    handler: str = Field(
        default="jsonl",
        description="LogHandler name; 'none' disables shipping.",
        json_schema_extra=env("WATERFLOW_LOG_HANDLER"),
    )
    options: dict[str, str] = Field(default_factory=dict, description="Options of the log handler.")


class AgentLoggingSection(LoggingSection):
    """``[logging]``: the agent's own log on stderr."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Least severe level logged.", json_schema_extra=env("WATERFLOW_LOG_LEVEL")
    )


class AgentProcessConfig(BaseModel):
    """Everything ``waterflow agent`` is configured with (file, environment, flags; ADR 0035)."""

    model_config = ConfigDict(extra="forbid")

    temporal: TemporalSection = Field(default_factory=TemporalSection)
    agent: AgentSection = Field(default_factory=AgentSection)
    secrets: SecretsSection = Field(default_factory=SecretsSection)
    step_logs: StepLogsSection = Field(default_factory=StepLogsSection)
    logging: AgentLoggingSection = Field(default_factory=AgentLoggingSection)
