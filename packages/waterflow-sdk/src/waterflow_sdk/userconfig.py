"""The client commands' user configuration: server URL, API token and default output.

Read from ``$WATERFLOW_CLIENT_CONFIG``, else ``$XDG_CONFIG_HOME/waterflow/client.toml`` (``XDG_CONFIG_HOME``
defaults to ``~/.config``); a missing default file is no error. Flags override variables
(``WATERFLOW_SERVER``, ``WATERFLOW_API_TOKEN``, ``WATERFLOW_CLIENT_OUTPUT``), which override the file. A
file holding a token must not be readable by other users (ADR 0035).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config_layers import ConfigFailure

if TYPE_CHECKING:
    from waterflow_core.config import Loaded

__all__ = ["CLIENT_CONFIG_ENV", "DEFAULT_SERVER", "client_config_path", "client_model", "output_default", "token"]

CLIENT_CONFIG_ENV = "WATERFLOW_CLIENT_CONFIG"
DEFAULT_SERVER = "http://127.0.0.1:8080"


@functools.cache
def client_model() -> type[Any]:
    """The model of ``client.toml`` (top-level keys only); built on first use, as pydantic is slow to import."""
    from pydantic import BaseModel, ConfigDict, Field, SecretStr

    from waterflow_core.config import env

    class ClientConfig(BaseModel):
        """``client.toml``."""

        model_config = ConfigDict(extra="forbid")

        server: str = Field(default=DEFAULT_SERVER, description="URL of the Waterflow server.")
        token: SecretStr | None = Field(
            default=None, description="API bearer token.", json_schema_extra=env("WATERFLOW_API_TOKEN")
        )
        # Not WATERFLOW_OUTPUT: that is the file a step writes its outputs to.
        output: str | None = Field(
            default=None,
            description="Default --output of the client commands.",
            json_schema_extra=env("WATERFLOW_CLIENT_OUTPUT"),
        )

    return ClientConfig


def client_config_path(environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The file to read, and whether it was named explicitly (then it must exist)."""
    named = environ.get(CLIENT_CONFIG_ENV, "").strip()
    if named:
        return Path(named), True
    base = environ.get("XDG_CONFIG_HOME", "").strip() or str(Path.home() / ".config")
    return Path(base) / "waterflow" / "client.toml", False


def _loaded() -> Loaded[Any]:
    from waterflow_core.config import ConfigError, load_config

    path, named = client_config_path(os.environ)
    try:
        return load_config(client_model(), file=path if named or path.exists() else None, environ=os.environ)
    except ConfigError as exc:
        raise ConfigFailure(str(exc)) from None


def server() -> str:
    """The server URL when ``--server`` is not given."""
    url: str = _loaded().config.server
    return url


def token() -> str | None:
    """The API token from ``WATERFLOW_API_TOKEN`` or the file, if any."""
    secret = _loaded().config.token
    return secret.get_secret_value() if secret else None


def output_default(choices: Sequence[str], fallback: str) -> Callable[[], str]:
    """The default of ``--output``: the configured one (checked against ``choices``) or ``fallback``."""

    def default() -> str:
        loaded = _loaded()
        chosen = loaded.config.output
        if chosen is None:
            return fallback
        if chosen not in choices:
            raise ConfigFailure(f"{loaded.where('output')}: output must be one of {', '.join(choices)}, not {chosen!r}")
        return chosen

    return default
