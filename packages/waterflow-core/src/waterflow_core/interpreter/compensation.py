"""Saga compensation: undo completed steps in reverse completion order after a failed run.

A compensation is a :class:`~.stepcall.StepCall` of kind ``compensation``, captured when its
step succeeded. It runs on the personal queue of the agent that ran the step it undoes (undoing
a migration or a file copy must happen on that host); if no agent picks it up there within
:data:`~.stepcall.STICKY_PICKUP` (the agent is gone), it runs on the step's group queue instead.
Compensations run one at a time, each even if an earlier one failed (best effort), and are
never cancelled by the run's cancellation: they are what the cancellation asked for.

Each one's progress entry is listed run-wide (``RunProgress.compensations``, in the order they
ran) and after the steps of the job instance whose step it undoes, so whatever shows a job's
steps (the API, ``status``, ``logs``) shows its compensations, their status, error and log.
"""

from __future__ import annotations

from collections.abc import Callable

from ..runs import ConditionStatus, StepProgress
from ..steptask import StepResult
from .emit import Emitter
from .stepcall import StepCall, launch


def compensation_step_id(step: str) -> str:
    """The id a compensation runs under (``migrate.compensate``): its activity id's step part."""
    return f"{step}.compensate"


async def run_compensations(
    calls: list[StepCall],
    *,
    status: ConditionStatus,
    progress: list[StepProgress],
    listed: Callable[[StepProgress], None] = lambda entry: None,
    emit: Emitter | None = None,
) -> list[str]:
    """Run ``calls`` in reverse order; return the error message of each that failed.

    ``status`` is what the compensations' status functions read (``failure`` or ``cancelled``);
    ``listed`` also lists each entry with its job instance's steps; ``emit`` gets each one's
    ``step.started`` and ``step.finished`` (kind ``compensation``).
    """
    errors: list[str] = []
    for recorded in reversed(calls):
        call = recorded.with_status(status)
        task = call.task
        entry = StepProgress(id=task.step, job=task.job, instance=task.instance, uses=task.node, name=task.name)
        progress.append(entry)
        listed(entry)
        if emit is not None:
            emit.step_started(task.job, entry, call.path, "compensation")
        outcome = await launch(call, entry)
        if isinstance(outcome, StepResult):
            entry.status = "success"
        else:
            entry.status = "failure"
            errors.append(outcome.message)
        entry.conclusion = entry.status
        if emit is not None:
            emit.step_finished(task.job, entry, call.path, "compensation")
    return errors
