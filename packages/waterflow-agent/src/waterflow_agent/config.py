"""The agent's settings, as given on the command line (or built directly by tests/embedders)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from waterflow_core.agent_registry import DEFAULT_HEARTBEAT_INTERVAL, personal_queue
from waterflow_core.temporal import TemporalSettings

from .steplog import DEFAULT_BURST, DEFAULT_RATE


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
    run_secrets_ttl: timedelta = Field(default=timedelta(hours=24), gt=timedelta(0))
    """How long after a run's last step on this agent its secrets are still masked in its steps."""
    step_log_rate: int = Field(default=DEFAULT_RATE, ge=0)
    """Bytes a second each step may log (lines beyond are dropped and counted; 0: no limit)."""
    step_log_burst: int = Field(default=DEFAULT_BURST, ge=64 * 1024)
    """Bytes a step may log at once before the rate applies."""

    @field_validator("name")
    @classmethod
    def _name_is_queue_safe(cls, value: str) -> str:
        # The name becomes part of a task queue and a workflow id.
        if any(ch.isspace() for ch in value) or "/" in value:
            raise ValueError("agent name must not contain whitespace or '/'")
        return value

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
