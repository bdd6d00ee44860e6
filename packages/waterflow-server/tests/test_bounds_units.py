"""Request bounds in isolation: the validation pool, stream limits, JSON depth, page tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import pytest

from waterflow_server.api.bodies import MAX_JSON_DEPTH, parse_json
from waterflow_server.api.pagination import PageToken
from waterflow_server.api.problems import APIError
from waterflow_server.api.streams import StreamLimits
from waterflow_server.api.validation import ValidationPool

pytestmark = pytest.mark.unit


def _token(doc: object) -> str:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "!!!",  # not base64
        _token(b"\xff\xfe not json"),  # not UTF-8 / JSON
        _token(b"[" * 100_000),  # nested past the recursion limit
        _token([1, 2]),  # not an object
        _token("text"),
        _token(None),
        _token({"t": 5, "s": 0}),  # wrong types
        _token({"t": None, "s": "3"}),
        _token({"t": None, "s": True}),
        _token({"t": None, "s": 1.5}),
        _token({"t": None, "s": -1}),
        _token({"t": None, "s": 10**30}),
        _token({"t": "not base64 !!", "s": 0}),
        _token({"t": None, "s": 0, "x": 1}),  # not one this server issued
        "é" * 8,  # not ASCII
    ],
)
def test_page_token_garbage_is_a_value_error(token: str) -> None:
    with pytest.raises(ValueError, match="invalid page_token"):
        PageToken.decode(token)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # RecursionError inside json
        '{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1),  # parses, too deep
        "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
    ],
)
def test_deep_json_is_a_400(text: str) -> None:
    with pytest.raises(APIError) as caught:
        parse_json(text, "request body")
    assert caught.value.status == 400
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in caught.value.message


def test_json_at_the_depth_limit_and_nan() -> None:
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(ok, "body") is not None
    for constant in ("NaN", "[Infinity]", '{"a": -Infinity}'):
        with pytest.raises(APIError, match="not valid JSON"):
            parse_json(constant, "body")


def _spin_until(event: threading.Event) -> str:
    # Pure-Python busy work: what a hostile workflow costs, stoppable between bytecodes.
    while not event.is_set():
        time.sleep(0.001)
    return "done"


async def test_validation_over_budget_is_stopped_and_its_slot_freed() -> None:
    pool = ValidationPool(workers=1, queue=0, budget=0.2)
    never = threading.Event()
    before = threading.active_count()
    with pytest.raises(APIError) as caught:
        await pool.run(lambda: _spin_until(never))
    assert (caught.value.status, caught.value.code) == (422, "too_complex")
    assert "budget" in caught.value.message
    # The thread was stopped, not abandoned: the one slot is free again and no thread lingers.
    assert threading.active_count() == before
    assert await pool.run(lambda: 41 + 1) == 42


async def test_validation_pool_bounds_running_and_waiting() -> None:
    pool = ValidationPool(workers=1, queue=1, budget=60)
    release = threading.Event()
    first = asyncio.ensure_future(pool.run(lambda: _spin_until(release)))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(pool.run(lambda: "second"))
    await asyncio.sleep(0)
    with pytest.raises(APIError) as caught:
        await pool.run(lambda: "third")
    assert (caught.value.status, caught.value.code) == (503, "busy")
    assert not second.done()  # waiting for the one worker, not running beside it
    release.set()
    assert await first == "done"
    assert await second == "second"


async def test_validation_errors_and_deep_recursion_come_back_as_errors() -> None:
    pool = ValidationPool()

    def fails() -> None:
        raise ValueError("bad")

    def recurses(n: int = 0) -> int:
        return recurses(n + 1)

    with pytest.raises(ValueError, match="bad"):
        await pool.run(fails)
    with pytest.raises(APIError) as caught:
        await pool.run(recurses)
    assert (caught.value.status, caught.value.code) == (422, "too_complex")


async def test_cancelled_validation_stops_its_thread() -> None:
    pool = ValidationPool(workers=1, queue=0, budget=60)
    never = threading.Event()
    task = asyncio.ensure_future(pool.run(lambda: _spin_until(never)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await pool.run(lambda: "next") == "next"


def test_stream_limits_per_client_and_total() -> None:
    limits = StreamLimits(per_client=2, total=3, max_seconds=0)
    a1, a2 = limits.acquire("10.0.0.1"), limits.acquire("10.0.0.1")
    with pytest.raises(APIError) as caught:
        limits.acquire("10.0.0.1")
    assert (caught.value.status, caught.value.code) == (429, "too_many_streams")
    limits.acquire("10.0.0.2")
    with pytest.raises(APIError, match="the server already serves 3 streams"):
        limits.acquire("10.0.0.3")
    assert a1.expired()  # max_seconds=0: over at once
    a1.release()
    a1.release()  # idempotent: a second release frees nothing more
    assert limits.open_streams == 2
    limits.acquire("10.0.0.1")
    a2.release()
    assert limits.open_streams == 2
