"""Run single steps on real agents through Temporal, the way the interpreter does.

:class:`RunStepWorkflow` executes one activity, named by the node type, on a chosen task queue,
with the interpreter's conventions (activity id ``<job>/<step>``, start-to-close and heartbeat
timeouts, a retry policy). Node packages and the agent use it in tests through the
``step_harness`` fixture of :mod:`waterflow_testing.pytest_plugin`; it is importable by its real module
name, so it runs in the normal workflow sandbox.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from waterflow_core.steptask import StepResult, StepTask
from waterflow_core.temporal import sandboxed_runner

__all__ = ["RunStepWorkflow", "StepCall", "StepHarness", "make_step"]


class StepCall(BaseModel):
    """What :class:`RunStepWorkflow` executes: one task on one queue, with its timeouts."""

    task: StepTask
    queue: str
    heartbeat_timeout: float = 10.0
    start_to_close: float = 120.0
    max_attempts: int = 1


@workflow.defn(name="WaterflowTestRunStep")
class RunStepWorkflow:
    """Executes one step activity and returns its :class:`StepResult`."""

    @workflow.run
    async def run(self, call: StepCall) -> StepResult:
        """Schedule the step on ``call.queue`` and wait for it."""
        result: StepResult = await workflow.execute_activity(
            call.task.node,
            call.task,
            task_queue=call.queue,
            activity_id=call.task.step_path,
            result_type=StepResult,
            start_to_close_timeout=timedelta(seconds=call.start_to_close),
            heartbeat_timeout=timedelta(seconds=call.heartbeat_timeout),
            retry_policy=RetryPolicy(
                maximum_attempts=call.max_attempts, initial_interval=timedelta(milliseconds=100)
            ),
        )
        return result


def make_step(node: str, with_: dict[str, Any] | None = None, **fields: Any) -> StepTask:
    """A :class:`StepTask` of job ``job``, step ``s1`` unless ``step=`` says otherwise."""
    fields.setdefault("workflow_id", f"wf-{uuid.uuid4().hex[:8]}")
    fields.setdefault("job", "job")
    fields.setdefault("step", "s1")
    return StepTask.model_validate({"node": node, "with": with_ or {}, **fields})


class StepHarness:
    """Starts :class:`RunStepWorkflow` runs on its own task queue (served by :meth:`serve`)."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue

    def serve(self) -> Worker:
        """The worker for the harness workflow; use as ``async with harness.serve():``."""
        return Worker(
            self.client,
            task_queue=self.task_queue,
            workflows=[RunStepWorkflow],
            workflow_runner=sandboxed_runner(),
        )

    async def start(
        self, task: StepTask, queue: str, **options: Any
    ) -> WorkflowHandle[RunStepWorkflow, StepResult]:
        """Start the step; ``options`` are the other :class:`StepCall` fields."""
        return await self.client.start_workflow(
            RunStepWorkflow.run,
            StepCall(task=task, queue=queue, **options),
            id=f"waterflow-test-step-{uuid.uuid4().hex}",
            task_queue=self.task_queue,
        )

    async def run(
        self, task: StepTask, queue: str, *, timeout: float = 120.0, **options: Any
    ) -> StepResult:
        """Run the step to completion (raises ``WorkflowFailureError`` if it fails)."""
        handle = await self.start(task, queue, **options)
        return await asyncio.wait_for(handle.result(), timeout)
