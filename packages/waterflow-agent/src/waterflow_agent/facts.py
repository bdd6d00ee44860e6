"""Host facts an agent publishes with its registration and offers nodes as ``ctx.facts``."""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Mapping
from typing import Any

from . import __version__


def host_facts(extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Hostname, OS, architecture, Python and CPU count, plus user-given ``--fact`` pairs."""
    facts: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "os": platform.system().lower(),
        "os_release": platform.release(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count() or 1,
        "agent_version": __version__,
    }
    facts.update(extra or {})
    return facts
