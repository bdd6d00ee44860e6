"""Waterflow server: REST API and interpreter workflow worker.

``create_app(ServerSettings(...))`` builds the ASGI application; ``waterflow server`` and
``waterflow dev`` (contributed to the ``waterflow`` CLI by :mod:`waterflow_server.cli`) run it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from waterflow_core.lazy import lazy_exports

if TYPE_CHECKING:
    from .api.app import create_app
    from .settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]

# Resolved on first use: the CLI plugin imports this package and must stay cheap to import.
_LAZY = {"create_app": ".api.app", "ServerSettings": ".settings"}


__getattr__ = lazy_exports(globals(), _LAZY)
