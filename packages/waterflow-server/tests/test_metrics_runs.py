"""``/metrics`` beyond HTTP: runs by status, step durations by node type, agents, worker, event queues.

The unit tests feed :class:`RunEventMetrics` and :class:`EventDelivery` events by hand (fixed
timestamps); the integration test runs a real ``waterflow server`` process and a real agent and
reads the scrape as Prometheus would.
"""

from __future__ import annotations

import asyncio
import textwrap
import urllib.request
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from waterflow_core.providers import EventHandler
from waterflow_sdk import Client
from waterflow_server import run_metrics
from waterflow_server.event_delivery import EventDelivery
from waterflow_server.run_metrics import RunEventMetrics
from waterflow_testing import eventually, unique_name
from waterflow_testing.devserver import free_port


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape: ``(name, labels) -> value``."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float | None:
    return scrape.get((name, frozenset(labels.items())))


def step_event(kind: str, ts: str, **fields: Any) -> dict[str, Any]:
    event = {
        "type": kind,
        "workflow_id": "wf",
        "run_id": "r1",
        "path": "build/compile",
        "kind": "step",
        "uses": "exec/shell",
        "ts": ts,
    }
    return {**event, **fields}


# -- unit -----------------------------------------------------------------------------------------


@pytest.mark.unit
def test_step_durations_are_paired_by_step_and_runs_counted_by_status() -> None:
    registry = CollectorRegistry()
    metrics = RunEventMetrics(registry)
    metrics.observe(step_event("step.started", "2026-01-01T00:00:00Z"))
    metrics.observe(step_event("step.started", "2026-01-01T00:00:01Z", run_id="r2"))
    metrics.observe(step_event("step.finished", "2026-01-01T00:00:04.5Z", run_id="r2", status="failure"))
    metrics.observe(step_event("step.finished", "2026-01-01T00:00:02Z", status="success"))
    # A skipped step never started; a finish without a start (before this process) is not timed.
    metrics.observe(step_event("step.finished", "2026-01-01T00:00:02Z", path="build/skip", status="skipped"))
    metrics.observe(step_event("step.finished", "2026-01-01T00:00:02Z", path="build/old", status="success"))
    metrics.observe({"type": "run.succeeded", "status": "succeeded"})
    metrics.observe({"type": "run.failed", "status": "failed"})
    metrics.observe({"type": "run.started"})
    metrics.observe({"type": "run.bogus", "status": "exploded"})

    scrape = samples(generate_latest(registry).decode())
    name = "waterflow_step_duration_seconds"
    success = {"uses": "exec/shell", "kind": "step", "status": "success"}
    assert value(scrape, f"{name}_count", **success) == 1
    assert value(scrape, f"{name}_sum", **success) == 2.0
    failure = {**success, "status": "failure"}
    assert value(scrape, f"{name}_sum", **failure) == 3.5
    assert value(scrape, f"{name}_bucket", **failure, le="2.5") == 0
    assert value(scrape, f"{name}_bucket", **failure, le="5.0") == 1
    assert value(scrape, f"{name}_count", **{**success, "status": "skipped"}) is None
    assert value(scrape, "waterflow_runs_finished_total", status="succeeded") == 1
    assert value(scrape, "waterflow_runs_finished_total", status="failed") == 1
    assert value(scrape, "waterflow_runs_finished_total", status="exploded") is None


@pytest.mark.unit
def test_labels_stay_bounded_whatever_the_events_say(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_metrics, "MAX_NODE_TYPES", 3)
    monkeypatch.setattr(run_metrics, "MAX_OPEN_STEPS", 2)
    registry = CollectorRegistry()
    metrics = RunEventMetrics(registry)
    for n in range(6):
        path = f"j/s{n}"
        metrics.observe(step_event("step.started", "2026-01-01T00:00:00Z", path=path, uses=f"evil/{n}"))
        metrics.observe(
            step_event("step.finished", "2026-01-01T00:00:01Z", path=path, uses=f"evil/{n}", status="success")
        )
    # Forgotten starts: only the two latest of three open steps are remembered.
    for n in range(3):
        metrics.observe(step_event("step.started", "2026-01-01T00:00:00Z", path=f"open/{n}"))
    for n in range(3):
        metrics.observe(step_event("step.finished", "2026-01-01T00:00:09Z", path=f"open/{n}", status="success"))
    # Malformed timestamps and a finish before the start are ignored, never raised.
    metrics.observe(step_event("step.started", "yesterday", path="bad"))
    metrics.observe(step_event("step.started", "2026-01-01T00:00:05Z", path="neg"))
    metrics.observe(step_event("step.finished", "2026-01-01T00:00:01Z", path="neg", status="success"))

    scrape = samples(generate_latest(registry).decode())
    uses = {dict(labels)["uses"] for (name, labels) in scrape if name == "waterflow_step_duration_seconds_count"}
    assert uses == {"evil/0", "evil/1", "evil/2", "other"}
    # evil/3..5, and two of the open steps: exec/shell came after the cap, so it is "other" too.
    other = value(scrape, "waterflow_step_duration_seconds_count", uses="other", kind="step", status="success")
    assert other == 5


class Recording(EventHandler):
    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Mapping[str, Any]] = []

    async def handle(self, event: Mapping[str, Any]) -> None:
        self.seen.append(event)


@pytest.mark.unit
async def test_taps_see_events_without_handlers_and_a_failing_tap_costs_no_delivery() -> None:
    seen: list[Mapping[str, Any]] = []
    only_taps = EventDelivery([], taps=[seen.append])
    only_taps.start()
    try:
        only_taps.offer({"type": "run.started", "id": "a"})
    finally:
        await only_taps.close()
    assert [e["id"] for e in seen] == ["a"]

    def broken(event: Mapping[str, Any]) -> None:
        raise RuntimeError("tap bug")

    handler = Recording()
    delivery = EventDelivery([handler], taps=[broken])
    delivery.start()
    try:
        delivery.offer({"type": "run.started", "id": "b"})
        assert delivery.queues() == {"recording": (1, 1000)}
        await eventually(lambda: handler.seen)
    finally:
        await delivery.close()
    assert [e["id"] for e in handler.seen] == ["b"]
    assert delivery.stats()["recording"].delivered == 1


@pytest.mark.unit
async def test_an_unreachable_temporal_is_counted_and_the_scrape_still_answers() -> None:
    from temporalio.client import Client as TemporalClient

    from waterflow_server.api.metrics import Metrics

    nowhere = await TemporalClient.connect(f"127.0.0.1:{free_port()}", lazy=True)  # nothing listens
    found = samples((await Metrics().scrape(nowhere, worker=None)).decode())
    assert value(found, "waterflow_metrics_source_errors_total", source="visibility") == 1
    assert value(found, "waterflow_metrics_source_errors_total", source="agents") == 1
    assert value(found, "waterflow_worker_state", state="running") == 0
    assert not [name for name, _ in found if name in ("waterflow_runs", "waterflow_agents_live")]


# -- a real server and agent ----------------------------------------------------------------------


def scrape(url: str) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        content_type = response.headers["Content-Type"]
        return content_type, samples(response.read().decode())


@pytest.mark.integration
def test_a_run_shows_in_the_scrape(start_server, start_agent) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("metrics")
    start_agent(unique_name("agent-metrics"), [group])
    server = start_server()
    workflow = textwrap.dedent(
        f"""
        name: metrics-e2e
        jobs:
          work:
            runs-on: {group}
            steps:
              - uses: exec/shell
                with: {{command: "echo measured"}}
              - if: false
                uses: exec/shell
                with: {{command: "echo never"}}
        """
    ).lstrip()
    with Client(server.url) as client:
        ref = client.submit(workflow)
        assert client.wait(ref.id, timeout=120, poll=0.2).succeeded
        spec = client._http.get("/openapi.json").json()
    content = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert any(kind.startswith("text/plain; version=0.0.4") for kind in content), content

    def ready() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return scrape(server.url)[1]

    def complete(found: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> bool:
        # Visibility is eventually consistent and cached for 10 s: wait for the run to show.
        return (value(found, "waterflow_runs", status="succeeded") or 0) >= 1 and value(
            found, "waterflow_agents_live", group=group
        ) == 1

    found = asyncio.run(eventually(ready, complete, timeout=60, interval=1.0))
    content_type, _ = scrape(server.url)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert value(found, "waterflow_runs_finished_total", status="succeeded") == 1
    shell = {"uses": "exec/shell", "kind": "step"}
    assert value(found, "waterflow_step_duration_seconds_count", **shell, status="success") == 1
    assert value(found, "waterflow_step_duration_seconds_count", **shell, status="skipped") is None
    assert value(found, "waterflow_worker_state", state="running") == 1
    assert value(found, "waterflow_worker_state", state="stopped") == 0
    # The default `log` handler's queue: emptied, every event of the run delivered.
    assert value(found, "waterflow_event_queue_depth", handler="log") == 0
    assert value(found, "waterflow_event_queue_capacity", handler="log") == 1000
    delivered = value(found, "waterflow_events_total", handler="log", outcome="delivered") or 0
    assert delivered >= 5  # run.started, 2 step.started/finished (1 skipped: 1 event), run.succeeded
    assert value(found, "waterflow_events_total", handler="log", outcome="dropped") == 0
    assert value(found, "waterflow_http_requests_total", method="POST", route="/v1/workflows", status="201") == 1
