"""Saga compensation: undo completed steps in reverse completion order after a failed run.

A compensation is a :class:`~.stepcall.StepCall` of kind ``compensation``, captured when its
step succeeded. It runs on the personal queue of the agent that ran the step it undoes (undoing
a migration or a file copy must happen on that host); if no agent picks it up there within
:data:`~.stepcall.STICKY_PICKUP` (the agent is gone), it runs on the step's group queue instead.
Compensations run one at a time, each even if an earlier one failed (best effort), and are
never cancelled by the run's cancellation: they are what the cancellation asked for.
"""

from __future__ import annotations

from ..runs import ConditionStatus, StepProgress
from ..steptask import StepResult
from .stepcall import StepCall, launch


def compensation_step_id(step: str) -> str:
    """The id a compensation runs under (``migrate.compensate``): its activity id's step part."""
    return f"{step}.compensate"


async def run_compensations(
    calls: list[StepCall], *, status: ConditionStatus, progress: list[StepProgress]
) -> list[str]:
    """Run ``calls`` in reverse order; return the error message of each that failed.

    ``status`` is what the compensations' status functions read (``failure`` or ``cancelled``).
    """
    errors: list[str] = []
    for recorded in reversed(calls):
        call = recorded.with_status(status)
        task = call.task
        entry = StepProgress(id=task.step, job=task.job, instance=task.instance, uses=task.node)
        progress.append(entry)
        outcome = await launch(call, entry)
        if isinstance(outcome, StepResult):
            entry.status = "success"
        else:
            entry.status = "failure"
            errors.append(outcome.message)
        entry.conclusion = entry.status
    return errors
