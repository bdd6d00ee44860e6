"""Configuration sections shared by the server's and the agent's models: Temporal and logging."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .config import env
from .temporal import DEFAULT_ADDRESS, DEFAULT_NAMESPACE, TemporalSettings

__all__ = ["LoggingSection", "TemporalSection"]


class TemporalSection(TemporalSettings):
    """``[temporal]``: where Temporal is and how to authenticate (ADR 0027)."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(default=DEFAULT_ADDRESS, description="Temporal frontend host:port.")
    namespace: str = Field(default=DEFAULT_NAMESPACE, description="Temporal namespace.")
    tls: bool = Field(default=False, description="Use TLS with the system's CA roots even when no TLS file is set.")
    tls_cert: Path | None = Field(default=None, description="Client certificate (PEM) for mutual TLS; needs tls_key.")
    tls_key: Path | None = Field(default=None, description="Private key (PEM) of tls_cert.")
    tls_ca: Path | None = Field(
        default=None, description="CA certificate (PEM) the server's certificate must be signed by."
    )
    tls_server_name: str | None = Field(
        default=None, description="Name the server's certificate must carry, when not the host of address."
    )
    api_key: SecretStr | None = Field(default=None, description="API key sent as a bearer token (Temporal Cloud).")


class LoggingSection(BaseModel):
    """``[logging]``: the process's own log on stderr."""

    model_config = ConfigDict(extra="forbid")

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="warning", description="Least severe level logged.", json_schema_extra=env("WATERFLOW_LOG_LEVEL")
    )
    format: Literal["text", "json"] = Field(
        default="text",
        description="'text' lines, or 'json': one object per line with ts, level, logger, message and extra fields.",
        json_schema_extra=env("WATERFLOW_LOG_FORMAT"),
    )
