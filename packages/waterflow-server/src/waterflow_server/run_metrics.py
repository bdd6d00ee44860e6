"""Metrics fed by the run events this server's interpreter worker publishes (ADR 0031).

:class:`RunEventMetrics` is a *tap* of :class:`~.event_delivery.EventDelivery`: it sees every
event in the publishing thread, so it only counts and returns. It counts finished runs by
status and times steps by node type, pairing each ``step.started`` with its ``step.finished``
by ``ts`` (workflow time, so the same duration a replay would see).

Label values are bounded: ``status`` and ``kind`` come from fixed sets, ``uses`` from the node
types the workflow validator accepted (installed or announced by agents), and past
:data:`MAX_NODE_TYPES` distinct ones the rest are counted as ``other``. Run ids never become
labels. Delivery is at-least-once, so a retried workflow task may count an event twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["MAX_NODE_TYPES", "MAX_OPEN_STEPS", "RunEventMetrics"]

MAX_NODE_TYPES = 200
"""Distinct ``uses`` label values; more are counted as ``other`` (a guard, not a normal limit)."""
MAX_OPEN_STEPS = 10_000
"""Started steps remembered until they finish; past it the oldest are forgotten (not timed)."""

_RUN_STATUSES = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
_STEP_STATUSES = frozenset({"success", "failure", "cancelled"})
_KINDS = frozenset({"step", "compensation"})
STEP_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0)


class RunEventMetrics:
    """Finished runs by status and step durations by node type, from run events."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs_finished = Counter(
            "waterflow_runs_finished",
            "Runs this server's worker saw finish, by status.",
            ["status"],
            registry=registry,
        )
        self.step_duration = Histogram(
            "waterflow_step_duration_seconds",
            "Time from a step's start to its end (workflow time), by node type, kind and status.",
            ["uses", "kind", "status"],
            registry=registry,
            buckets=STEP_BUCKETS,
        )
        self._lock = threading.Lock()
        self._started: OrderedDict[tuple[str, ...], datetime] = OrderedDict()
        self._node_types: set[str] = set()

    def observe(self, event: Mapping[str, Any]) -> None:
        """Count ``event`` (an :class:`~.event_delivery.EventDelivery` tap: quick, any thread)."""
        kind = event.get("type")
        if kind == "step.started":
            self._step_started(event)
        elif kind == "step.finished":
            self._step_finished(event)
        elif isinstance(kind, str) and kind.startswith("run.") and event.get("status") in _RUN_STATUSES:
            self.runs_finished.labels(event["status"]).inc()

    def _step_started(self, event: Mapping[str, Any]) -> None:
        started = _moment(event.get("ts"))
        if started is None:
            return
        with self._lock:
            self._started[_step_key(event)] = started
            while len(self._started) > MAX_OPEN_STEPS:
                self._started.popitem(last=False)

    def _step_finished(self, event: Mapping[str, Any]) -> None:
        with self._lock:
            started = self._started.pop(_step_key(event), None)
        finished = _moment(event.get("ts"))
        status = event.get("status")
        if started is None or finished is None or status not in _STEP_STATUSES:
            return  # a skipped step never started; a start before this process began is unknown
        seconds = (finished - started).total_seconds()
        if seconds < 0:
            return
        kind = event.get("kind") if event.get("kind") in _KINDS else "step"
        self.step_duration.labels(self._node_type(event.get("uses")), kind, status).observe(seconds)

    def _node_type(self, uses: Any) -> str:
        name = uses if isinstance(uses, str) and uses else "unknown"
        with self._lock:
            if name in self._node_types:
                return name
            if len(self._node_types) >= MAX_NODE_TYPES:
                return "other"
            self._node_types.add(name)
            return name


def _step_key(event: Mapping[str, Any]) -> tuple[str, ...]:
    # run_id, not workflow_id alone: a loop chunk's steps carry the run's workflow_id but the
    # chunk's own run_id, and two chunks may run steps with the same path.
    return tuple(str(event.get(field)) for field in ("workflow_id", "run_id", "path", "kind"))


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
