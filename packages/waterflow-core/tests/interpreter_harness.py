"""The interpreter tests' harness: a real Temporal, the interpreter worker, test nodes.

The steps run on an in-process activity worker serving one dynamic activity (the same shape as
the agent's): ``test/*`` node types defined below, so each test controls exactly what a step
does (succeed, fail, flake, sleep until cancelled) and observes what the workflow sent it.
Test modules wrap :func:`harness` in their fixture ``h``.

Set ``WATERFLOW_RECORD_HISTORIES=1`` to (re)write the replay corpus in ``histories/`` from the
runs marked with ``record=...``; ``test_replay.py`` replays every file there.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from waterflow_core.dsl import load_workflow
from waterflow_core.expressions import parse_template
from waterflow_core.interpreter import build_interpreter_worker, start_run
from waterflow_core.interpreter.failures import STEP_CANCELLED
from waterflow_core.providers import ServerGroupProvider
from waterflow_core.runs import PROGRESS_QUERY, JobProgress, RunInput, RunProgress, StepProgress
from waterflow_core.steptask import StepResult, StepTask

HISTORIES = Path(__file__).parent / "histories"
RECORD = os.environ.get("WATERFLOW_RECORD_HISTORIES") == "1"


# -- the test nodes ----------------------------------------------------------------------------


@dataclass
class Call:
    activity_id: str
    node: str
    queue: str
    attempt: int
    task: StepTask
    started: float
    ended: float = 0.0
    outcome: str = "running"


@dataclass
class Nodes:
    """The dynamic activity; ``calls`` records every attempt in start order."""

    calls: list[Call] = field(default_factory=list)
    agent: str = "test-agent"

    def by_id(self, activity_id: str) -> list[Call]:
        return [c for c in self.calls if c.activity_id == activity_id]

    def ids(self) -> list[str]:
        return [c.activity_id for c in self.calls]

    @activity.defn(dynamic=True)
    async def execute(self, args: Sequence[RawValue]) -> StepResult:
        info = activity.info()
        task = activity.payload_converter().from_payload(args[0].payload, StepTask)
        call = Call(info.activity_id, info.activity_type, info.task_queue, info.attempt, task, time.monotonic())
        self.calls.append(call)
        try:
            result = await self._run(info, task)
        except asyncio.CancelledError:
            call.outcome = "cancelled"
            raise
        except Exception as err:
            cancelled = isinstance(err, ApplicationError) and err.type == STEP_CANCELLED
            call.outcome = "cancelled" if cancelled else "failure"
            raise
        else:
            call.outcome = "success"
            return result
        finally:
            call.ended = time.monotonic()

    async def _run(self, info: activity.Info, task: StepTask) -> StepResult:
        contexts = {**task.contexts, "server": {"name": self.agent}}
        params = {k: render(v, contexts, task.status) for k, v in task.with_.items()}
        node = info.activity_type
        agent = self.agent if not info.task_queue.startswith("agent:") else info.task_queue[6:]
        if node == "test/echo":
            await _sleep(float(params.pop("sleep", 0)))
            # Logged before `big` is expanded: a big output must not be recorded twice.
            log = f"echo {json.dumps(params, sort_keys=True)}"
            if "big" in params:
                params["big"] = "X" * int(params["big"])
            return StepResult(outputs=params, agent=agent, log_tail=[log])
        if node == "test/fail":
            raise ApplicationError(
                params.get("message", "boom"),
                {"log_tail": ["about to fail"]},
                type=params.get("type", "WaterflowStepFailed"),
            )
        if node == "test/flaky":
            # Earlier attempts' errors travel in the heartbeat details, which Temporal hands to
            # the next attempt (what an agent does for `attempt_errors`).
            earlier = info.heartbeat_details[0]["attempt_errors"] if info.heartbeat_details else []
            if info.attempt < int(params["succeed-on"]):
                message = f"flaky attempt {info.attempt}"
                activity.heartbeat({"attempt_errors": [*earlier, message]})
                raise ApplicationError(message, {"attempt_errors": earlier}, type="WaterflowStepFailed")
            return StepResult(outputs={"attempt": info.attempt}, agent=agent, attempt_errors=earlier)
        if node == "test/sleep":
            try:
                await _sleep(float(params.get("seconds", 60)))
            except asyncio.CancelledError:
                if params.get("log-on-cancel"):
                    # Temporal drops what a cancelled activity says: an agent that acknowledges a
                    # cancellation with its log tail fails with this type instead.
                    details = {"log_tail": ["slept a while", "got cancelled"], "agent": agent}
                    raise ApplicationError("cancelled", details, type=STEP_CANCELLED, non_retryable=True) from None
                raise
            return StepResult(outputs={"slept": True}, agent=agent)
        raise ApplicationError(f"unknown test node {node}", type="WaterflowUnknownNode", non_retryable=True)


async def _sleep(seconds: float) -> None:
    """Sleep while heartbeating, so cancellation reaches the activity."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        activity.heartbeat()
        await asyncio.sleep(min(0.1, max(deadline - time.monotonic(), 0)))


def render(value: Any, contexts: dict[str, Any], status: str) -> Any:
    if isinstance(value, str) and "$<<" in value:
        return parse_template(value).render(contexts, status=status)
    if isinstance(value, dict):
        return {k: render(v, contexts, status) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, contexts, status) for v in value]
    return value


# -- harness -----------------------------------------------------------------------------------


@dataclass
class Harness:
    client: Client
    queue: str  # the steps' queue (runs-on)
    wf_queue: str  # the interpreter's queue
    nodes: Nodes
    servers: dict[str, list[str]]

    async def start(self, text: str, inputs: dict[str, Any] | None = None) -> WorkflowHandle[Any, RunProgress]:
        workflow = load_workflow(text.replace("QUEUE", self.queue))
        return await start_run(
            self.client,
            RunInput.plan(workflow, inputs, source=text),
            workflow_id=f"test-{uuid.uuid4().hex[:12]}",
            task_queue=self.wf_queue,
        )

    async def run(
        self, text: str, inputs: dict[str, Any] | None = None, *, record: str | None = None
    ) -> tuple[RunProgress, BaseException | None]:
        handle = await self.start(text, inputs)
        return await self.finish(handle, record=record)

    async def finish(
        self, handle: WorkflowHandle[Any, RunProgress], *, record: str | None = None
    ) -> tuple[RunProgress, BaseException | None]:
        error: BaseException | None = None
        try:
            await asyncio.wait_for(handle.result(), 60)
        except WorkflowFailureError as exc:
            error = exc.cause
        progress = await handle.query(PROGRESS_QUERY, result_type=RunProgress)
        if record and RECORD:
            history = await handle.fetch_history()
            HISTORIES.mkdir(exist_ok=True)
            (HISTORIES / f"{record}.json").write_text(history.to_json())
        return progress, error

    async def wait_running(self, handle: WorkflowHandle[Any, RunProgress], activity_id: str) -> None:
        for _ in range(200):
            if any(c.activity_id == activity_id and c.outcome == "running" for c in self.nodes.calls):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{activity_id} never started; calls: {self.nodes.ids()}")


def activity_worker(client: Client, queue: str, nodes: Nodes) -> Worker:
    # The SDK sends heartbeats at most every 80 % of the heartbeat timeout (24 s for the default
    # 30 s) unless told otherwise; cancellation reaches an activity with its next heartbeat.
    return Worker(
        client, task_queue=queue, activities=[nodes.execute], max_heartbeat_throttle_interval=timedelta(seconds=1)
    )


@asynccontextmanager
async def server_fleet(
    client: Client, task_queue: str, provider: ServerGroupProvider, servers: Sequence[str]
) -> AsyncIterator[Harness]:
    """An interpreter worker answering each-server from ``provider``, and one agent worker per
    server on its personal queue (``agent:<name>``); the steps of every server share ``nodes``."""
    nodes = Nodes()
    wf_queue = f"{task_queue}-wf"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(build_interpreter_worker(client, wf_queue, server_groups=provider))
        for name in servers:
            await stack.enter_async_context(activity_worker(client, f"agent:{name}", nodes))
        yield Harness(client, task_queue, wf_queue, nodes, {})


async def harness(temporal_client: Client, task_queue: str) -> AsyncIterator[Harness]:
    """The body of the ``h`` fixture: workers for the interpreter, the steps and the agent's own queue."""
    nodes = Nodes(agent=f"test-agent-{uuid.uuid4().hex[:8]}")
    servers: dict[str, list[str]] = {}

    class Groups(ServerGroupProvider):
        """The test's ``servers`` mapping, as live agents (the harness's agents are not registered)."""

        name = "harness"
        lists_live_agents = True

        async def servers(self, group: str) -> list[dict[str, Any]]:
            if group.endswith("-broken"):
                raise ApplicationError(f"inventory of {group} cannot be read", non_retryable=True)
            return [{"name": name} for name in servers.get(group, [])]

        async def groups(self) -> list[str]:
            return sorted(servers)

    wf_queue = f"{task_queue}-wf"
    interpreter = build_interpreter_worker(temporal_client, wf_queue, server_groups=Groups())
    steps = activity_worker(temporal_client, task_queue, nodes)
    # The agent's personal queue: compensations go to the agent that ran the step.
    personal = activity_worker(temporal_client, f"agent:{nodes.agent}", nodes)
    async with interpreter, steps, personal:
        yield Harness(temporal_client, task_queue, wf_queue, nodes, servers)


def job(progress: RunProgress, job_id: str, instance: str | None = None) -> JobProgress:
    return next(j for j in progress.jobs if j.id == job_id and j.instance == instance)


def step(progress: RunProgress, job_id: str, step_id: str, instance: str | None = None) -> StepProgress:
    return next(s for s in job(progress, job_id, instance).steps if s.id == step_id)
