"""Waterflow agent: Temporal activity worker that runs nodes on target servers."""

from __future__ import annotations

import importlib.metadata

try:
    __version__ = importlib.metadata.version("waterflow-agent")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0"
