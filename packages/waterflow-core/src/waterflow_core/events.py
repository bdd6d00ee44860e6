"""Run events, from the workflow to whoever delivers them (docs/adr/0031-run-events.md).

The interpreter workflow calls :func:`publish` (through ``interpreter/emit.py``) for each run and
step event, outside replay. The process hosting the worker installs a *sink* with
:func:`install_sink`; without one, publishing does nothing. This module is passed through the
workflow sandbox (``waterflow_core.temporal.SANDBOX_PASSTHROUGH``), so the workflow and the
worker host see the same sink.

``publish`` runs inside workflow activations (worker threads, a 2 s deadline): it never blocks
and never raises. A sink must be just as quick (hand the event to a bounded queue, drop and count
when full); the sink's own errors are counted here and swallowed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Sink", "failures", "install_sink", "publish", "uninstall_sink"]

Sink = Callable[[Mapping[str, Any]], None]
"""Takes one event; must not block. Called from any thread."""

_lock = threading.Lock()
_sink: Sink | None = None
_failures = 0


def publish(event: Mapping[str, Any]) -> None:
    """Hand ``event`` to the installed sink, if any. Never raises, never blocks."""
    global _failures
    sink = _sink  # one read: a concurrent uninstall cannot leave us calling None
    if sink is None:
        return
    try:
        sink(event)
    except Exception:  # noqa: BLE001 - a delivery problem must never fail a workflow task
        with _lock:
            _failures += 1


def install_sink(sink: Sink) -> None:
    """Make ``sink`` receive every event published in this process (replaces any previous one)."""
    global _sink
    with _lock:
        _sink = sink


def uninstall_sink(sink: Sink) -> None:
    """Stop sending events to ``sink``; a no-op if another sink was installed since."""
    global _sink
    with _lock:
        if _sink == sink:  # bound methods are equal, not identical, across accesses
            _sink = None


def failures() -> int:
    """How many events a sink raised on since the process started (they were lost)."""
    return _failures
