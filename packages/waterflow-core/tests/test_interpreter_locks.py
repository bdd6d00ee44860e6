"""``concurrency:`` on a real Temporal: runs sharing a key through the ``WaterflowLock`` workflow.

Each test uses keys of its own (the lock workflows are namespace-wide). Orderings are checked
on the test nodes' own start/end marks, never on durations.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError

from waterflow_core.dsl import load_workflow
from waterflow_core.errors import WorkflowValidationError
from waterflow_core.interpreter.locks import STATE_QUERY, LockState, lock_id
from waterflow_core.runs import PROGRESS_QUERY, RunProgress

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the shared harness is a sibling module
from interpreter_harness import Call, Harness, harness, job


@pytest.fixture
async def h(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    async for running in harness(temporal_client, task_queue):
        yield running


def locked(key: str, policy: str = "queue", *, sleep: float = 1.0, compensate: bool = False, fail: bool = False) -> str:
    undo = ", compensate: {uses: test/echo, with: {undo: yes}}" if compensate else ""
    last = "{id: work, uses: test/fail}" if fail else f"{{id: work, uses: test/sleep, with: {{seconds: {sleep}}}}}"
    return f"""
name: locked
inputs:
  tag: {{default: x}}
concurrency: {{key: "{key}-$<< inputs.tag >>", policy: {policy}}}
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {{id: first, uses: test/echo, with: {{tag: "$<< inputs.tag >>"}}{undo}}}
      - {last}
"""


def calls_of(h: Harness, handle: WorkflowHandle[Any, RunProgress]) -> list[Call]:
    return [c for c in h.nodes.calls if c.task.workflow_id == handle.id]


async def progress(handle: WorkflowHandle[Any, RunProgress]) -> RunProgress:
    return await handle.query(PROGRESS_QUERY, result_type=RunProgress)


async def until(check: Any, what: str) -> None:
    for _ in range(400):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def holding(h: Harness, handle: WorkflowHandle[Any, RunProgress]) -> None:
    async def started() -> bool:
        return any(c.activity_id.endswith("work") for c in calls_of(h, handle))

    await until(started, f"{handle.id} runs its steps")


async def waiting(handle: WorkflowHandle[Any, RunProgress], holder: str) -> RunProgress:
    seen: list[RunProgress] = []

    async def queued() -> bool:
        seen[:] = [await progress(handle)]
        lock = seen[0].waiting_for_lock
        return lock is not None and lock.holder == holder

    await until(queued, f"{handle.id} waits behind {holder}")
    return seen[0]


def span(calls: list[Call]) -> tuple[float, float]:
    return min(c.started for c in calls), max(c.ended for c in calls)


async def test_queue_runs_one_after_the_other_in_fifo_order(h: Harness) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    text = locked(key, sleep=0.3)
    first = await h.start(locked(key, sleep=4))  # long enough to queue two runs behind it
    await holding(h, first)
    second = await h.start(text)
    shown = await waiting(second, first.id)
    third = await h.start(text)
    await waiting(third, first.id)
    assert shown.waiting_for_lock is not None
    assert (shown.waiting_for_lock.key, shown.waiting_for_lock.policy) == (f"{key}-x", "queue")
    assert not calls_of(h, second), "a queued run starts no step"
    assert job(shown, "j").status == "pending"

    results = [await h.finish(first), await h.finish(second, record="concurrency"), await h.finish(third)]
    assert [p.status for p, _ in results] == ["succeeded"] * 3
    spans = [span(calls_of(h, handle)) for handle in (first, second, third)]
    assert spans[0][1] <= spans[1][0] and spans[1][1] <= spans[2][0], spans
    assert all(p.waiting_for_lock is None and p.locks == [] for p, _ in results)
    # Nobody holds or waits: the lock workflow has ended.
    lock = h.client.get_workflow_handle(lock_id(f"{key}-x"))
    await asyncio.wait_for(lock.result(), 30)


async def test_different_keys_do_not_wait_for_each_other(h: Harness) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    text = locked(key, sleep=30)
    first = await h.start(text, {"tag": "a"})
    await holding(h, first)
    other = await h.start(text, {"tag": "b"})
    await holding(h, other)
    held = (await progress(first)).locks
    assert [(lk.key, lk.scope, lk.holder) for lk in held] == [(f"{key}-a", "workflow", first.id)]
    for handle in (first, other):
        await handle.cancel()


async def test_refuse_fails_the_newcomer_naming_the_holder(h: Harness) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    first = await h.start(locked(key, sleep=30))
    await holding(h, first)
    progress_, error = await h.run(locked(key, "refuse"))
    assert progress_.status == "failed"
    assert isinstance(error, ApplicationError)
    assert first.id in str(error) and f"{key}-x" in str(error)
    assert progress_.jobs[0].status == "pending" and not [c for c in h.nodes.calls if c.task.workflow_id != first.id]
    await first.cancel()


async def test_cancel_running_cancels_and_compensates_the_holder_first(h: Harness) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    first = await h.start(locked(key, sleep=60, compensate=True))
    await holding(h, first)
    second = await h.start(locked(key, "cancel-running", sleep=0))
    ended, _ = await h.finish(first, record="concurrency_cancelled")
    assert ended.status == "cancelled"
    assert [c.status for c in ended.compensations] == ["success"]
    done, error = await h.finish(second)
    assert done.status == "succeeded", error
    compensation = next(c for c in calls_of(h, first) if "compensate" in c.activity_id)
    assert compensation.ended <= span(calls_of(h, second))[0], "the newcomer starts after the compensation"


async def test_a_failing_holder_releases_the_lock(h: Harness) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    first = await h.start(locked(key, fail=True))
    await holding(h, first)  # started back to back, either run could ask for the lock first
    second = await h.start(locked(key, sleep=0))
    failed, _ = await h.finish(first)
    assert failed.status == "failed"
    done, error = await h.finish(second)
    assert done.status == "succeeded", error
    assert span(calls_of(h, first))[1] <= span(calls_of(h, second))[0]


async def test_a_terminated_holder_does_not_block_the_queue(h: Harness) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    first = await h.start(locked(key, sleep=60))
    await holding(h, first)
    second = await h.start(locked(key, sleep=0))
    await waiting(second, first.id)
    lock = h.client.get_workflow_handle(lock_id(f"{key}-x"))
    state = await lock.query(STATE_QUERY, result_type=LockState)
    assert state.holder is not None and state.holder.run == first.id
    assert [w.run for w in state.waiting] == [second.id]
    await first.terminate("gone")  # no release: the lock learns it from the holder's end
    done, error = await h.finish(second)
    assert done.status == "succeeded", error


async def test_a_run_cancelled_while_waiting_withdraws(h: Harness) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    first = await h.start(locked(key, sleep=1.5))
    await holding(h, first)
    second = await h.start(locked(key))
    await waiting(second, first.id)
    await second.cancel()
    cancelled, _ = await h.finish(second)
    assert cancelled.status == "cancelled" and not calls_of(h, second)
    lock = h.client.get_workflow_handle(lock_id(f"{key}-x"))
    state = await lock.query(STATE_QUERY, result_type=LockState)
    assert state.waiting == []
    assert (await h.finish(first))[0].status == "succeeded"


async def test_a_run_timing_out_while_waiting_withdraws(h: Harness) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    first = await h.start(locked(key, sleep=30))
    await holding(h, first)
    late, error = await h.run(locked(key).replace("name: locked", "name: locked\ntimeout: 1s"))
    assert late.status == "timed_out" and "waiting for its concurrency lock" in str(error)
    state = await h.client.get_workflow_handle(lock_id(f"{key}-x")).query(STATE_QUERY, result_type=LockState)
    assert state.waiting == []
    await first.cancel()


async def test_a_key_too_long_once_rendered_fails_the_run(h: Harness) -> None:
    done, error = await h.run(locked("k"), {"tag": "x" * 600})
    assert done.status == "failed"
    assert "concurrency key is 602 characters long, at most 500" in str(error)


JOBS = """
name: jobs
jobs:
  a:
    runs-on: QUEUE
    concurrency: KEY
    steps: [{id: work, uses: test/sleep, with: {seconds: 0.5}}]
  b:
    runs-on: QUEUE
    concurrency: {key: KEY, policy: queue}
    steps: [{id: work, uses: test/sleep, with: {seconds: 0.5}}]
  c:
    runs-on: QUEUE
    needs: [a, b]
    steps: [{id: after, uses: test/echo}]
"""


async def test_job_level_locks_serialize_jobs(h: Harness) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    done, error = await h.run(JOBS.replace("KEY", key))
    assert done.status == "succeeded", error
    a = [c for c in h.nodes.calls if c.activity_id.startswith("a/")]
    b = [c for c in h.nodes.calls if c.activity_id.startswith("b/")]
    assert span(a)[1] <= span(b)[0] or span(b)[1] <= span(a)[0]
    assert job(done, "a").waiting_for_lock is None and done.locks == []


async def test_same_key_for_the_run_and_its_job_is_refused_not_a_deadlock(h: Harness) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    text = JOBS.replace("KEY", key).replace("jobs:\n  a:", f"concurrency: {key}\njobs:\n  a:", 1)
    done, error = await h.run(text)
    assert done.status == "failed"
    assert "already taken by this run" in str(error)


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("concurrency: {key: '$<< secrets.x >>'}", "context 'secrets' is not available in concurrency.key"),
        ("concurrency: {key: k, policy: later}", "expected one of 'queue', 'cancel-running', 'refuse'"),
        ("concurrency: {key: ''}", "concurrency.key"),
        ("concurrency: {key: '$<< inputs. >>'}", "concurrency.key"),
    ],
)
def test_bad_concurrency_is_refused_at_submit_with_its_place(snippet: str, message: str) -> None:
    text = f"name: x\n{snippet}\njobs:\n  a: {{runs-on: q, steps: [{{uses: a/b}}]}}\n"
    with pytest.raises(WorkflowValidationError) as caught:
        load_workflow(text)
    assert message in str(caught.value) and "2:" in str(caught.value)


def test_job_keys_may_read_needs_but_not_matrix() -> None:
    ok = "name: x\njobs:\n  a: {runs-on: q, concurrency: '$<< needs.b.result >>', needs: b, steps: [{uses: a/b}]}\n"
    ok += "  b: {runs-on: q, steps: [{uses: a/b}]}\n"
    assert load_workflow(ok).jobs["a"].concurrency is not None
    bad = "name: x\njobs:\n  a: {runs-on: q, concurrency: '$<< matrix.x >>', steps: [{uses: a/b}]}\n"
    with pytest.raises(WorkflowValidationError, match="context 'matrix' is not available"):
        load_workflow(bad)
