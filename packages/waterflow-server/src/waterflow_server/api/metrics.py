"""Prometheus metrics of one server process (``GET /metrics``).

Each application gets its own registry, so two apps in one process (tests) never share counts.
Requests are labelled by route *pattern* (``/v1/workflows/{id}``), never by raw path, to keep
the number of series bounded.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from blacksheep import Application, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

Handler = Callable[[Request], Awaitable[Response]]


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

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

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
