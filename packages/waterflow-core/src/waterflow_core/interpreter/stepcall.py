"""One step activity, described once: :class:`StepCall`, and the one way to run it (:func:`launch`).

Steps and saga compensations are the same thing on the wire (a :class:`StepTask` for the node
named by ``uses``); they differ only in their :data:`StepKind`, which decides the activity's
cancellation type, its summary and the word that starts its error messages
(``step db/migrate failed...``, ``compensation db/migrate.compensate failed...``).

Determinism: the commands issued here (activity id, type, queue, options, summary) are what the
recorded histories in ``tests/histories`` expect; changing any of them needs
``workflow.patched`` (ADR 0002).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError
from temporalio.exceptions import CancelledError as TemporalCancelledError

from ..runs import ConditionStatus, StepProgress
from ..steptask import StepResult, StepTask
from . import scopes
from .contexts import MAX_ERROR_CHARS, attempt_errors, clip, summarize_outputs, tail
from .failures import StepFailure, describe
from .payloads import oversized_input
from .retry import ActivityOptions

StepKind = Literal["step", "compensation"]
"""What a :class:`StepCall` runs; also the first word of its error messages."""

SUMMARY_CHARS = 200
"""Activity summaries are cut here: the Temporal UI shows them in one line."""

STICKY_PICKUP = timedelta(minutes=5)
"""How long an activity with a fallback queue waits for its first queue before moving on."""

# A step whose scope is cancelled waits for the agent to acknowledge the cancellation (it sees it
# on its next heartbeat) so a compensation never overlaps the step it undoes; a dead agent is
# bounded by the heartbeat timeout (ADR 0002). Compensations are never cancelled: the SDK's
# default type, as they have always been scheduled with.
_CANCELLATION: dict[StepKind, workflow.ActivityCancellationType] = {
    "step": workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    "compensation": workflow.ActivityCancellationType.TRY_CANCEL,
}


@dataclass(frozen=True, slots=True)
class StepCall:
    """Everything one step (or compensation) activity is scheduled with."""

    kind: StepKind
    task: StepTask
    """The activity's input: who it is (job, step id, instance), its node, its display name
    (``name``, also the summary), its unrendered templates and the contexts they read."""
    options: ActivityOptions
    queue: str
    fallback: str | None = None
    """A queue to try when no agent took the call from ``queue`` within :data:`STICKY_PICKUP`
    (a compensation waits for the agent that ran its step, then takes any of the group)."""
    pickup: timedelta | None = None
    """How long the call may wait for an agent to take it from ``queue`` (no fallback); None:
    as long as the run lasts. Set for each-server steps, whose one agent may have died."""

    @property
    def path(self) -> str:
        """``job/step[#instance]``: the activity id."""
        return self.task.step_path

    @property
    def summary(self) -> str:
        """The activity summary: the display name in one line (steps) or cut (compensations).

        The two rules differ only because recorded histories carry them; see the module note.
        """
        if self.kind == "step":
            return " ".join(self.task.name.split())[:SUMMARY_CHARS]
        return self.task.name[:SUMMARY_CHARS]

    def with_status(self, status: ConditionStatus) -> StepCall:
        """This call with the status its status functions read (known only when it runs)."""
        return dataclasses.replace(self, task=self.task.model_copy(update={"status": status}))


async def launch(call: StepCall, entry: StepProgress, scope: scopes.Scope | None = None) -> StepResult | StepFailure:
    """Run ``call`` to its end, keeping ``entry`` (its progress) up to date.

    ``scope`` cancels the activity when it is cancelled; a call launched in an already cancelled
    scope (an ``always()`` step) runs to its end. ``entry.status`` is left to the caller, which
    knows what a failure means for its run.
    """
    entry.name = call.task.name
    entry.status = "running"
    entry.started_at = workflow.now()
    sticky = call.fallback is not None
    too_big = oversized_input(call.task)
    if too_big is not None:
        # Scheduling it would fail the workflow task forever (see payloads): fail the step.
        outcome: StepResult | StepFailure = StepFailure(f"{call.kind} {call.path} failed: {too_big}")
    else:
        outcome = await _attempt(call, entry, scope, queue=call.queue, activity_id=call.path, sticky=sticky)
    if call.fallback is not None and isinstance(outcome, StepFailure) and outcome.unclaimed:
        # The agent that should take it is gone: any agent of the group may.
        activity_id = f"{call.path}@{call.fallback}"
        outcome = await _attempt(call, entry, scope, queue=call.fallback, activity_id=activity_id, sticky=False)
    if isinstance(outcome, StepFailure):
        outcome.message = clip(outcome.message, MAX_ERROR_CHARS) or ""
        entry.error = outcome.message
        entry.agent = outcome.agent
        entry.attempt = outcome.attempt
        entry.log_tail = tail(outcome.log_tail)
    else:
        entry.agent = outcome.agent
        entry.attempt = outcome.attempt
        entry.outputs = summarize_outputs(outcome.outputs)
        entry.log_tail = tail(outcome.log_tail)
    entry.attempt_errors = attempt_errors(outcome.attempt_errors)
    entry.finished_at = workflow.now()
    return outcome


async def _attempt(
    call: StepCall,
    entry: StepProgress,
    scope: scopes.Scope | None,
    *,
    queue: str,
    activity_id: str,
    sticky: bool,
) -> StepResult | StepFailure:
    """Schedule the activity on ``queue`` once and wait for it (Temporal retries within)."""
    entry.queue = queue
    handle = workflow.start_activity(
        call.task.node,
        call.task,
        task_queue=queue,
        result_type=StepResult,
        activity_id=activity_id,
        start_to_close_timeout=call.options.start_to_close,
        heartbeat_timeout=call.options.heartbeat,
        schedule_to_start_timeout=STICKY_PICKUP if sticky else call.pickup,
        retry_policy=call.options.retry_policy,
        cancellation_type=_CANCELLATION[call.kind],
        summary=call.summary,
    )
    tracked = scope if scope is not None and not scope.cancelled else None
    if tracked is not None:
        tracked.track(handle)
    try:
        return await handle
    except (ActivityError, TemporalCancelledError, asyncio.CancelledError) as err:
        return describe(call.kind, call.path, err, call.options)
    finally:
        if tracked is not None:
            tracked.untrack(handle)
