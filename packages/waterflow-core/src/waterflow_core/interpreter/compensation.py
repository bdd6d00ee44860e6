"""Saga compensation: undo completed steps in reverse completion order after a failed run.

A compensation is a step-like activity. It runs on the personal queue of the agent that ran the
step it undoes (undoing a migration or a file copy must happen on that host); if no agent picks
it up there within :data:`STICKY_PICKUP` (the agent is gone), it runs on the step's group queue
instead. Compensations run one at a time, each even if an earlier one failed (best effort), and
are never cancelled by the run's cancellation: they are what the cancellation asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType

from ..agent_registry import personal_queue
from ..dsl.models import Compensate
from ..runs import StepProgress
from ..steptask import StepResult, StepTask
from .contexts import MAX_ERROR_CHARS, clip, summarize_outputs, tail
from .failures import describe
from .retry import ActivityOptions

STICKY_PICKUP = timedelta(minutes=5)
"""How long a compensation waits for the agent that ran the step before any agent of the group
may take it."""


@dataclass(slots=True)
class CompensationRecord:
    """Everything needed to run one compensation later (captured when its step succeeded)."""

    job: str
    step: str
    instance: str | None
    display: str
    compensate: Compensate
    group: str
    agent: str
    options: ActivityOptions
    env: dict[str, str] = field(default_factory=dict)
    contexts: dict[str, Any] = field(default_factory=dict)

    @property
    def step_id(self) -> str:
        return f"{self.step}.compensate"

    @property
    def path(self) -> str:
        base = f"{self.job}/{self.step_id}"
        return f"{base}#{self.instance}" if self.instance else base


async def run_compensations(
    records: list[CompensationRecord], *, status: str, progress: list[StepProgress]
) -> list[str]:
    """Run ``records`` in reverse order; return the error message of each that failed."""
    errors: list[str] = []
    info = workflow.info()
    for record in reversed(records):
        display = record.compensate.name or f"compensate {record.display}"
        entry = StepProgress(
            id=record.step_id,
            job=record.job,
            instance=record.instance,
            name=display,
            uses=record.compensate.uses,
            status="running",
            started_at=workflow.now(),
        )
        progress.append(entry)
        task = StepTask(
            workflow_id=info.workflow_id,
            job=record.job,
            step=record.step_id,
            instance=record.instance,
            name=display,
            node=record.compensate.uses,
            with_=record.compensate.with_,
            env=record.env,
            contexts=record.contexts,
            status=status,
        )
        queues = [personal_queue(record.agent), record.group] if record.agent else [record.group]
        for index, queue in enumerate(queues):
            sticky = index < len(queues) - 1
            entry.queue = queue
            try:
                result: StepResult = await workflow.execute_activity(
                    record.compensate.uses,
                    task,
                    task_queue=queue,
                    result_type=StepResult,
                    activity_id=record.path if index == 0 else f"{record.path}@{queue}",
                    start_to_close_timeout=record.options.start_to_close,
                    heartbeat_timeout=record.options.heartbeat,
                    schedule_to_start_timeout=STICKY_PICKUP if sticky else None,
                    retry_policy=record.options.retry_policy,
                    summary=display[:200],
                )
            except ActivityError as err:
                cause = err.cause
                if sticky and isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START:
                    continue
                failure = describe(
                    record.path,
                    err,
                    max_attempts=record.options.max_attempts,
                    timeout=record.options.timeout_seconds,
                    heartbeat=record.options.heartbeat_seconds,
                )
                message = clip(failure.message.replace("step ", "compensation ", 1), MAX_ERROR_CHARS) or ""
                entry.status = "failure"
                entry.error = message
                entry.attempt = failure.attempt
                entry.agent = failure.agent
                entry.log_tail = tail(failure.log_tail)
                errors.append(message)
            else:
                entry.status = "success"
                entry.agent = result.agent
                entry.attempt = int(getattr(result, "attempt", 0) or 0)
                entry.outputs = summarize_outputs(result.outputs)
                entry.log_tail = tail(result.log_tail)
            break
        entry.conclusion = entry.status
        entry.finished_at = workflow.now()
    return errors
