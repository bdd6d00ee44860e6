"""Prometheus metrics of one server process (``GET /metrics``; every metric: docs/reference/metrics.md).

Each application gets its own registry, so two apps in one process (tests) never share counts.
Requests are labelled by route *pattern* (``/v1/workflows/{id}``), never by raw path, to keep
the number of series bounded.

Three sources: this process's own counters (requests, submissions), the run events its
interpreter worker publishes (:mod:`..run_metrics`), and what every server sees alike — runs by
status in Temporal visibility and the agent registry — read on scrape, at most once per
:data:`CLUSTER_CACHE_SECONDS`, so a stateless server needs no store and frequent scrapes cost
Temporal little.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from blacksheep import Application, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from waterflow_core import events
from waterflow_core.agent_registry import list_agents

from ..run_metrics import RunEventMetrics
from .status import API_STATUSES, visibility_query

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

CLUSTER_CACHE_SECONDS = 10.0
"""How long visibility counts and the agent list are reused between scrapes."""
REFRESH_TIMEOUT = timedelta(seconds=4)
"""Per source: a scrape must answer within Prometheus' default 10 s timeout even when Temporal hangs."""
MAX_GROUPS = 500
"""Agent groups given a series of their own; the rest are summed as ``other``."""
WORKER_STATES = ("running", "stopped", "disabled")
EVENT_OUTCOMES = ("queued", "delivered", "failed", "dropped", "lost", "recovered")


class Metrics:
    """The server's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "waterflow_http_requests",
            "HTTP requests answered, by method, route pattern and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "waterflow_http_request_duration_seconds",
            "Time to answer an HTTP request (for streams: until the response starts).",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.runs_submitted = Counter(
            "waterflow_runs_submitted",
            "Runs started through POST /v1/workflows.",
            registry=self.registry,
        )
        self.submissions_rejected = Counter(
            "waterflow_submissions_rejected",
            "Submissions refused, by reason (invalid, conflict, too_large, ...).",
            ["reason"],
            registry=self.registry,
        )
        self.runs = RunEventMetrics(self.registry)
        self.cluster = ClusterCollector()
        self.registry.register(self.cluster)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    async def scrape(self, client: Any, worker: Any) -> bytes:
        """Refresh what is read from Temporal (when older than the cache) and render every metric."""
        self.cluster.worker = worker
        await self.cluster.refresh(client)
        return self.render()

    def middleware(self, app: Application) -> Callable[[Request, Handler], Awaitable[Response]]:
        """A BlackSheep middleware that counts and times every request."""

        async def measure(request: Request, handler: Handler) -> Response:
            start = time.perf_counter()
            match = app.router.get_match(request)
            pattern = match.pattern if match is not None else None
            route = pattern.decode() if isinstance(pattern, bytes) else (pattern or "unmatched")
            if not route or route == "*":
                route = "unmatched"
            try:
                response = await handler(request)
            except Exception as exc:  # noqa: BLE001 - answered here so the status is counted
                response = await app.handle_request_handler_exception(request, exc)
            self.latency.labels(request.method, route).observe(time.perf_counter() - start)
            self.requests.labels(request.method, route, str(response.status)).inc()
            return response

        return measure


@dataclass
class ClusterSnapshot:
    """Runs by status and live agents by group, as Temporal last answered."""

    runs: dict[str, int] = field(default_factory=dict)
    agents_live: dict[str, int] = field(default_factory=dict)
    agents_stale: int = 0
    errors: Tally[str] = field(default_factory=Tally)


class ClusterCollector(Collector):
    """Visibility counts, the agent registry, the worker host and its event queues, on scrape."""

    def __init__(self) -> None:
        self.snapshot = ClusterSnapshot()
        self.worker: Any = None
        self._taken = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self, client: Any) -> None:
        """Ask Temporal again if the snapshot is older than :data:`CLUSTER_CACHE_SECONDS`."""
        async with self._lock:  # concurrent scrapes share one round of queries
            if client is None or time.monotonic() - self._taken < CLUSTER_CACHE_SECONDS:
                return
            snapshot = self.snapshot
            try:
                counts = await asyncio.gather(
                    *(
                        client.count_workflows(visibility_query([status]), rpc_timeout=REFRESH_TIMEOUT)
                        for status in API_STATUSES
                    )
                )
                snapshot.runs = {status: count.count for status, count in zip(API_STATUSES, counts, strict=True)}
            except Exception as exc:  # noqa: BLE001 - a scrape answers with what it has
                snapshot.errors["visibility"] += 1
                log.warning("metrics: cannot count runs in Temporal visibility: %s", exc)
            try:
                agents = await asyncio.wait_for(
                    list_agents(client, include_stale=True), REFRESH_TIMEOUT.total_seconds()
                )
            except Exception as exc:  # noqa: BLE001
                snapshot.errors["agents"] += 1
                log.warning("metrics: cannot read the agent registry: %s", exc)
            else:
                snapshot.agents_live, snapshot.agents_stale = _live_by_group(agents)
            self._taken = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        """The metric families, from the snapshot and the worker host as they are now."""
        snapshot = self.snapshot
        runs = GaugeMetricFamily(
            "waterflow_runs",
            "Runs in Temporal visibility by status (all servers; within retention).",
            labels=["status"],
        )
        for status, count in snapshot.runs.items():
            runs.add_metric([status], count)
        yield runs
        live = GaugeMetricFamily(
            "waterflow_agents_live",
            "Agents heartbeating, by group (0 for a group whose registered agents all went quiet).",
            labels=["group"],
        )
        for group, count in sorted(snapshot.agents_live.items()):
            live.add_metric([group], count)
        yield live
        yield GaugeMetricFamily(
            "waterflow_agents_stale", "Registered agents that stopped heartbeating.", value=snapshot.agents_stale
        )
        errors = CounterMetricFamily(
            "waterflow_metrics_source_errors",
            "Scrapes that could not refresh a source (visibility, agents) and reused older values.",
            labels=["source"],
        )
        for source in ("visibility", "agents"):
            errors.add_metric([source], snapshot.errors[source])
        yield errors
        yield from self._worker_metrics()

    def _worker_metrics(self) -> Iterator[Metric]:
        current = getattr(self.worker, "state", None)
        state = GaugeMetricFamily(
            "waterflow_worker_state", "1 for the interpreter worker's current state, else 0.", labels=["state"]
        )
        for name in WORKER_STATES:
            state.add_metric([name], 1 if name == current else 0)
        yield state
        delivery = getattr(self.worker, "events", None)
        depth = GaugeMetricFamily(
            "waterflow_event_queue_depth", "Run events waiting for an event handler.", labels=["handler"]
        )
        capacity = GaugeMetricFamily(
            "waterflow_event_queue_capacity", "Events a handler's queue holds before dropping.", labels=["handler"]
        )
        outcomes = CounterMetricFamily(
            "waterflow_events",
            "Run events per event handler by outcome: queued, delivered, failed (the handler gave up), "
            "dropped (queue full), lost (undelivered at shutdown), recovered (from the spool).",
            labels=["handler", "outcome"],
        )
        if delivery is not None:
            for name, (pending, size) in delivery.queues().items():
                depth.add_metric([name], pending)
                capacity.add_metric([name], size)
            for name, stats in delivery.stats().items():
                for outcome in EVENT_OUTCOMES:
                    outcomes.add_metric([name, outcome], getattr(stats, outcome))
        yield depth
        yield capacity
        yield outcomes
        yield CounterMetricFamily(
            "waterflow_event_sink_failures", "Run events the process's sink raised on (lost).", value=events.failures()
        )


def _live_by_group(agents: list[Any]) -> tuple[dict[str, int], int]:
    """Live agents per group (stale agents keep their groups at 0) and the number of stale ones."""
    live: dict[str, int] = {}
    stale = 0
    for agent in agents:
        alive = agent.is_alive()
        stale += not alive
        for name in agent.groups:
            group = name if name in live or len(live) < MAX_GROUPS else "other"
            live[group] = live.get(group, 0) + int(alive)
    return live, stale
