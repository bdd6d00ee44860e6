"""The ``env`` secret provider, fed from variables the agent took out of its environment.

:mod:`waterflow_agent.sensitive_env` removes ``WATERFLOW_SECRET_*`` from the process environment
before any step runs (so no child can inherit or read them); the built-in
:class:`~waterflow_core.providers.EnvSecretProvider` reads ``os.environ``, so the agent serves
the taken values itself, with the same lookup rules, and leaves files to the provider.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from waterflow_core.providers import EnvSecretProvider, SecretProvider

# EnvSecretProvider's rule: a name that could not be a variable or file name resolves to nothing.
_SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TakenEnvSecrets(SecretProvider):
    """``secrets.NAME`` from the taken ``<prefix>NAME`` variables, then the provider's files."""

    name = "env"

    def __init__(self, provider: EnvSecretProvider, taken: Mapping[str, str]) -> None:
        super().__init__()
        prefix = provider.options.prefix
        self._provider = provider
        self._values = {key[len(prefix) :]: value for key, value in taken.items() if key.startswith(prefix)}

    async def get(self, name: str) -> str | None:
        """As :meth:`EnvSecretProvider.get`: the exact name, then upper case; variables before files."""
        if not _SECRET_NAME.fullmatch(name):
            return None
        for candidate in dict.fromkeys((name, name.upper())):
            if candidate in self._values:
                return self._values[candidate]
        return await self._provider.get(name)


def serve_taken(provider: SecretProvider, taken: Mapping[str, str]) -> SecretProvider:
    """``provider``, wrapped to serve the taken variables when it is the ``env`` provider."""
    if isinstance(provider, EnvSecretProvider):
        return TakenEnvSecrets(provider, taken)
    return provider
