"""Keeping steps out of the agent process: what it imports, and who may inspect it.

Steps write files; they must not be able to turn those files into code the agent runs, nor read
the agent's memory. What this module does at start-up (docs/concepts/security.md):

- :func:`isolate_imports` takes the working directory (``python -m`` puts it first on
  ``sys.path``), relative entries and anything inside the step work directory off ``sys.path``,
  so neither hot reload nor a lazy import can pick up a module a step planted there. Plugin
  discovery itself only looks at site-packages and ``PYTHONPATH``
  (:func:`waterflow_core.plugins.plugin_path`);
- :func:`make_undumpable` marks the process non-dumpable, so processes of the same user (its
  steps, unless they run as another user) can neither ptrace it nor read its ``/proc/<pid>``
  files (``environ``, ``mem``, open file descriptors).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_DUMPABLE = 4


def isolate_imports(step_root: Path) -> list[str]:
    """Remove the ``sys.path`` entries steps could write to; returns the removed entries."""
    try:
        cwd: str | None = os.path.realpath(os.getcwd())
    except OSError:  # deleted: nothing can be imported from it anyway
        cwd = None
    root = os.path.realpath(step_root)
    removed: list[str] = []
    from_cwd = False
    for entry in list(sys.path):
        # '' and relative entries are resolved against the working directory at each import.
        real = os.path.realpath(entry) if entry and os.path.isabs(entry) else cwd
        if real is not None and real != cwd and os.path.commonpath([real, root]) != root:
            continue
        sys.path.remove(entry)
        removed.append(entry)
        from_cwd = from_cwd or real == cwd
    if from_cwd and not sys.flags.safe_path:
        # The agent's own modules were imported before this ran, so a module planted in the
        # working directory could already have been loaded.
        log.warning(
            "the working directory was on sys.path while the agent started; start it with "
            "'waterflow agent' or 'python -P -m waterflow_agent'"
        )
    return removed


def make_undumpable() -> bool:
    """``prctl(PR_SET_DUMPABLE, 0)``; ``False`` where that does not exist (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0:
            return True
        log.warning("prctl(PR_SET_DUMPABLE, 0) failed: %s", os.strerror(ctypes.get_errno()))
    return False
