"""Keeping an agent small: what it does not import, and how many malloc arenas it keeps (ADR 0045).

A machine may run hundreds of agents (a test fleet), and every agent starts by importing; both
measures below run before the agent imports its node packages.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

# mallopt(3) parameter number of M_ARENA_MAX (glibc's malloc.h).
_M_ARENA_MAX = -8
# Arenas an agent keeps unless MALLOC_ARENA_MAX says otherwise: glibc's default (8 per core) costs
# an idle agent 3-6 MiB of RSS for its SDK and worker threads, and the agent's own Python code
# holds the GIL anyway, so more arenas buy it nothing.
AGENT_MALLOC_ARENAS = 2


def skip_httpx_cli() -> None:
    """Keep httpx from importing its command line with the node packages that use httpx.

    ``import httpx`` imports ``httpx._main`` (rich, pygments, click's formatting) whenever those are
    installed, which costs every agent about 0.2 s of CPU and a few MiB; the agent never runs that
    command line. A ``None`` entry in :data:`sys.modules` makes the import fail, and httpx then
    defines its stub ``main`` (which asks for ``httpx[cli]`` if anyone calls it).
    """
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def limit_malloc_arenas(arenas: int = AGENT_MALLOC_ARENAS) -> bool:
    """``mallopt(M_ARENA_MAX, arenas)`` unless ``MALLOC_ARENA_MAX`` is set (then glibc applied it).

    Only this process: unlike the variable, it is not inherited by the processes of steps.
    ``False`` where there is no glibc ``mallopt`` (musl, macOS).
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        return bool(ctypes.CDLL(None).mallopt(_M_ARENA_MAX, arenas))
    return False
