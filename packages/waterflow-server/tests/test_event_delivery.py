"""Run event delivery (ADR 0031): the sink, the bounded queues, the dispatchers and the webhook.

Every webhook test talks to a real HTTP server on 127.0.0.1 (``waterflow_testing.webhook``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from waterflow_core import events
from waterflow_core.providers import EventHandler
from waterflow_core.webhook import WebhookError, WebhookEventHandler
from waterflow_server.event_delivery import EventDelivery
from waterflow_testing import eventually
from waterflow_testing.processes import free_port
from waterflow_testing.webhook import webhook_receiver

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-value"


def _event(seq: int, kind: str = "step.started") -> dict[str, Any]:
    return {
        "id": f"wf/run/{seq}",
        "type": kind,
        "workflow_id": "wf",
        "run_id": "run",
        "name": "t",
        "ts": "2026-01-01T00:00:00Z",
    }


class Recording(EventHandler):
    """A real handler that keeps what it got; raises for the ids in ``fail``."""

    name = "recording"

    def __init__(self, options: Any = None, *, fail: frozenset[str] = frozenset()) -> None:
        super().__init__(options)
        self.got: list[Mapping[str, Any]] = []
        self.fail = fail
        self.closed = False

    async def handle(self, event: Mapping[str, Any]) -> None:
        if event["id"] in self.fail:
            raise RuntimeError(f"cannot take {event['id']}")
        self.got.append(event)

    async def close(self) -> None:
        self.closed = True


# -- the webhook handler ------------------------------------------------------------------------


async def test_webhook_posts_one_signed_json_event() -> None:
    with webhook_receiver() as hook:
        handler = WebhookEventHandler({"url": hook.url, "secret": SECRET, "headers": {"Authorization": "Bearer t"}})
        await handler.handle(_event(1, "run.started"))
    [request] = hook.requests
    assert request.path == "/hook?token=abc"
    assert request.event == _event(1, "run.started")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-waterflow-event"] == "run.started"
    assert request.headers["x-waterflow-delivery"] == "wf/run/1"
    assert request.headers["authorization"] == "Bearer t"
    assert request.signed_with(SECRET)
    assert not request.signed_with("another secret")


async def test_webhook_without_secret_sends_no_signature() -> None:
    with webhook_receiver() as hook:
        await WebhookEventHandler({"url": hook.url}).handle(_event(1))
    assert "x-waterflow-signature-256" not in hook.requests[0].headers


async def test_event_fields_cannot_inject_request_headers() -> None:
    # Workflow ids are chosen by whoever submits a run; they reach the delivery-id header.
    event = {**_event(1), "id": "evil\r\nX-Injected: 1/run/1", "type": "run.started\nX-Also: 2"}
    with webhook_receiver() as hook:
        await WebhookEventHandler({"url": hook.url}).handle(event)
    [request] = hook.requests
    assert "x-injected" not in request.headers and "x-also" not in request.headers
    assert request.headers["x-waterflow-delivery"] == "evil??X-Injected: 1/run/1"
    assert request.event == event  # the body keeps the real values (JSON-escaped)


async def test_webhook_retries_server_errors_then_delivers() -> None:
    with webhook_receiver([500, 503, 429]) as hook:
        await WebhookEventHandler({"url": hook.url, "secret": SECRET, "backoff": 0}).handle(_event(7))
    assert [r.status for r in hook.requests] == [500, 503, 429, 200]
    # Every attempt carries the same body, id and a valid signature.
    assert {r.body for r in hook.requests} == {hook.requests[0].body}
    assert all(r.signed_with(SECRET) and r.headers["x-waterflow-delivery"] == "wf/run/7" for r in hook.requests)


async def test_webhook_gives_up_after_its_retries_without_leaking_secrets() -> None:
    with webhook_receiver() as hook:
        hook.default = 502
        handler = WebhookEventHandler(
            {"url": hook.url, "secret": SECRET, "retries": 2, "backoff": 0, "headers": {"X-Token": "hdr-secret"}}
        )
        with pytest.raises(WebhookError) as caught:
            await handler.handle(_event(1))
    assert len(hook.requests) == 3
    message = str(caught.value)
    assert "HTTP 502" in message and "3 attempt" in message and "wf/run/1" in message
    assert SECRET not in message and "hdr-secret" not in message and "token=abc" not in message
    assert SECRET not in repr(handler.options) and SECRET not in str(handler.options.model_dump())


async def test_webhook_does_not_retry_a_client_error() -> None:
    with webhook_receiver([400]) as hook:
        with pytest.raises(WebhookError, match="HTTP 400"):
            await WebhookEventHandler({"url": hook.url, "backoff": 0}).handle(_event(1))
    assert len(hook.requests) == 1


async def test_webhook_never_follows_a_redirect() -> None:
    with webhook_receiver() as target, webhook_receiver() as hook:
        hook.default, hook.location = 307, target.url
        with pytest.raises(WebhookError, match="redirects are not followed"):
            await WebhookEventHandler({"url": hook.url, "backoff": 0}).handle(_event(1))
    assert len(hook.requests) == 1
    assert target.requests == []


async def test_webhook_retries_a_refused_connection() -> None:
    handler = WebhookEventHandler({"url": f"http://127.0.0.1:{free_port()}/x", "retries": 1, "backoff": 0})
    with pytest.raises(WebhookError, match=r"2 attempt.*ConnectionRefusedError"):
        await handler.handle(_event(1))


async def test_webhook_attempt_times_out() -> None:
    with webhook_receiver() as hook:
        hook.gate.clear()  # the receiver reads the request and never answers
        handler = WebhookEventHandler({"url": hook.url, "timeout": 0.3, "retries": 0})
        with pytest.raises(WebhookError, match=r"1 attempt.*(timed out|TimeoutError)"):
            await handler.handle(_event(1))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "ftp://example.org/x"}, "http:// or https://"),
        ({"url": "file:///etc/passwd"}, "http:// or https://"),
        ({"url": "http:///nohost"}, "no host"),
        ({"url": "https://user:pw@example.org/"}, "must not carry a user or password"),
        ({"url": "http://example.org/a\r\nX-Evil: 1"}, "plain ASCII"),
        ({"url": "http://example.org:99999/"}, "Port out of range"),
        ({"url": "http://example.org/", "headers": {"Bad Name": "x"}}, "not a valid HTTP header name"),
        ({"url": "http://example.org/", "headers": {"X-A": "a\r\nX-Evil: 1"}}, "line break"),
        ({"url": "http://example.org/", "headers": {"X-Waterflow-Signature-256": "forged"}}, "set by Waterflow"),
        ({"url": "http://example.org/", "headers": {"content-type": "text/plain"}}, "set by Waterflow"),
        ({"url": "http://example.org/", "timeout": 0}, "greater than 0"),
        ({"url": "http://example.org/", "retries": -1}, "greater than or equal to 0"),
        ({"url": "http://example.org/", "queue-size": 0}, "greater than or equal to 1"),
        ({"url": "http://example.org/", "verify": False}, "Extra inputs"),
        ({}, "Field required"),
    ],
)
def test_webhook_options_are_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WebhookEventHandler(options)


# -- the process sink ---------------------------------------------------------------------------


def test_publish_without_a_sink_does_nothing_and_a_failing_sink_never_raises() -> None:
    events.publish(_event(1))
    before = events.failures()

    def broken(event: Mapping[str, Any]) -> None:
        raise RuntimeError("boom")

    events.install_sink(broken)
    try:
        events.publish(_event(2))
    finally:
        events.uninstall_sink(broken)
    assert events.failures() == before + 1
    events.uninstall_sink(broken)  # already gone: a no-op
    events.publish(_event(3))


def test_uninstalling_another_sink_keeps_the_current_one() -> None:
    got: list[Mapping[str, Any]] = []
    events.install_sink(got.append)
    try:
        events.uninstall_sink(lambda event: None)
        events.publish(_event(1))
    finally:
        events.uninstall_sink(got.append)
    assert got == [_event(1)]


# -- delivery: queues and dispatchers -----------------------------------------------------------


async def test_delivery_hands_events_from_many_threads_to_the_webhook_in_order() -> None:
    with webhook_receiver() as hook:
        delivery = EventDelivery([WebhookEventHandler({"url": hook.url, "secret": SECRET})])
        delivery.start()
        try:
            threads = [
                threading.Thread(target=lambda t=t: [events.publish(_event(t * 100 + i)) for i in range(10)])
                for t in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            await delivery.close()
        stats = delivery.stats()["webhook"]
    assert (stats.queued, stats.delivered, stats.dropped, stats.failed, stats.lost) == (40, 40, 0, 0, 0)
    ids = [int(e["id"].rsplit("/", 1)[1]) for e in hook.delivered()]
    assert sorted(ids) == sorted(t * 100 + i for t in range(4) for i in range(10))
    for t in range(4):  # each thread's events arrive in the order it published them
        mine = [i for i in ids if i // 100 == t]
        assert mine == sorted(mine)
    assert all(r.signed_with(SECRET) for r in hook.requests)
    events.publish(_event(999))  # closed: the sink is gone
    assert len(hook.requests) == 40


async def test_a_full_queue_drops_and_counts_without_waiting() -> None:
    with webhook_receiver() as hook:
        hook.gate.clear()  # the receiver holds every request
        delivery = EventDelivery([WebhookEventHandler({"url": hook.url, "queue-size": 3})], drain_seconds=30)
        delivery.start()
        for seq in range(10):
            events.publish(_event(seq))  # returns at once even though nothing can be delivered
        stats = delivery.stats()["webhook"]
        assert (stats.queued, stats.dropped) == (3, 7)
        hook.gate.set()
        await delivery.close()
    assert [e["id"] for e in hook.delivered()] == ["wf/run/0", "wf/run/1", "wf/run/2"]
    assert (stats.delivered, stats.lost) == (3, 0)


async def test_a_slow_handler_never_delays_another() -> None:
    with webhook_receiver() as slow, webhook_receiver() as fast:
        slow.gate.clear()
        delivery = EventDelivery(
            [WebhookEventHandler({"url": slow.url, "timeout": 60}), WebhookEventHandler({"url": fast.url})],
            drain_seconds=0,
        )
        delivery.start()
        for seq in range(5):
            events.publish(_event(seq))
        await eventually(fast.delivered, lambda got: len(got) == 5, timeout=30)
        assert slow.delivered() == []
        await delivery.close()  # no drain time: what the slow one still holds is lost, counted
    stats = delivery.stats()
    assert (stats["webhook#2"].delivered, stats["webhook#2"].lost) == (5, 0)
    assert (stats["webhook"].delivered, stats["webhook"].lost) == (0, 5)


async def test_a_failing_event_is_counted_and_the_next_ones_still_go() -> None:
    handler = Recording(fail=frozenset({"wf/run/1"}))
    delivery = EventDelivery([handler])
    delivery.start()
    for seq in range(3):
        events.publish(_event(seq))
    await delivery.close()
    assert [e["id"] for e in handler.got] == ["wf/run/0", "wf/run/2"]
    stats = delivery.stats()["recording"]
    assert (stats.delivered, stats.failed) == (2, 1)
    assert handler.closed


async def test_close_drains_then_counts_what_is_left_as_lost() -> None:
    with webhook_receiver() as hook:
        hook.gate.clear()
        handler = WebhookEventHandler({"url": hook.url, "timeout": 60})
        delivery = EventDelivery([handler], drain_seconds=0.2)
        delivery.start()
        for seq in range(4):
            events.publish(_event(seq))
        counters = delivery.stats()["webhook"]
        await delivery.close()
        assert counters.lost == 4 and counters.delivered == 0
        hook.gate.set()


async def test_delivery_without_handlers_installs_no_sink() -> None:
    got: list[Mapping[str, Any]] = []
    events.install_sink(got.append)
    try:
        delivery = EventDelivery([])
        delivery.start()
        events.publish(_event(1))
        await delivery.close()
    finally:
        events.uninstall_sink(got.append)
    assert got == [_event(1)]
