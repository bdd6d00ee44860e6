"""Activity failures as the one-line messages users read (``step db/migrate failed after ...``).

Compensations read the same with their own word: ``compensation db/migrate.compensate failed ...``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

from ..dsl.durations import format_duration

if TYPE_CHECKING:
    from .retry import ActivityOptions


STEP_CANCELLED = "WaterflowStepCancelled"
"""Error type of a step that acknowledged its cancellation with details (its log tail).

Temporal drops whatever a cancelled activity reports, so an agent that wants the step's last
log lines kept fails it with this (non-retryable) type instead; it reads as ``cancelled``."""


@dataclass(slots=True)
class StepFailure:
    """What went wrong with a step's activity."""

    message: str
    outcome: Literal["failure", "cancelled"] = "failure"
    attempt: int = 0
    agent: str = ""
    log_tail: list[str] = field(default_factory=list)
    unclaimed: bool = False
    """No agent picked the activity up within its schedule-to-start timeout."""
    attempt_errors: list[str] = field(default_factory=list)
    """The errors of the attempts before the last one, when the agent reports them."""
    timed_out: bool = False
    """The last attempt ran out of its ``timeout`` (start-to-close), or no agent picked it up."""


def details_of(err: ApplicationError) -> dict[str, Any]:
    """The first detail of an agent's error when it is a mapping (agent, attempt, log_tail...)."""
    try:
        details = err.details
    except Exception:  # noqa: BLE001 - undecodable details must not break the run
        return {}
    return details[0] if details and isinstance(details[0], dict) else {}


def describe(kind: str, path: str, err: BaseException, options: ActivityOptions) -> StepFailure:
    """Turn the error of ``await``-ing a step activity into a :class:`StepFailure`.

    ``kind`` (``step`` or ``compensation``) and ``path`` (the activity id) start the message.
    """
    subject = f"{kind} {path}"
    if not isinstance(err, ActivityError):
        if isinstance(err, CancelledError | asyncio.CancelledError):
            return StepFailure(f"{subject} was cancelled", outcome="cancelled")
        return StepFailure(f"{subject} failed: {err}")
    cause = err.cause
    attempts = options.max_attempts if err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED else 0
    info: dict[str, Any] = {}
    if isinstance(cause, CancelledError):
        return StepFailure(f"{subject} was cancelled", outcome="cancelled", attempt=attempts)
    if isinstance(cause, ApplicationError) and cause.type == STEP_CANCELLED:
        info = details_of(cause)
        return StepFailure(
            f"{subject} was cancelled",
            outcome="cancelled",
            attempt=attempts,
            agent=str(info.get("agent") or ""),
            log_tail=_strings(info.get("log_tail")),
            attempt_errors=_strings(info.get("attempt_errors")),
        )
    unclaimed = False
    timed_out = isinstance(cause, TimeoutError) and cause.type != TimeoutType.HEARTBEAT
    if isinstance(cause, TimeoutError):
        if cause.type == TimeoutType.HEARTBEAT:
            reason = f"its agent stopped responding (no heartbeat for {format_duration(options.heartbeat_seconds)})"
        elif cause.type == TimeoutType.SCHEDULE_TO_START:
            reason = "no agent picked it up in time"
            unclaimed = True
        else:
            reason = f"timed out after {format_duration(options.timeout_seconds)}"
    elif isinstance(cause, ApplicationError):
        info = details_of(cause)
        reason = cause.message or cause.type or "failed"
    elif cause is not None:
        reason = str(cause) or type(cause).__name__
    else:
        reason = err.message or "failed"
    # The agent prefixes its messages with the step path; the sentence below already names it.
    reason = reason.removeprefix(f"{path}: ")
    if not attempts and isinstance(info.get("attempt"), int):
        attempts = info["attempt"]
    if attempts > 1:
        message = f"{subject} failed after {attempts} attempts: {reason}"
    else:
        message = f"{subject} failed: {reason}"
    return StepFailure(
        message,
        attempt=attempts,
        agent=str(info.get("agent") or ""),
        log_tail=_strings(info.get("log_tail")),
        unclaimed=unclaimed,
        attempt_errors=_strings(info.get("attempt_errors")),
        timed_out=timed_out,
    )


def _strings(value: Any) -> list[str]:
    return [str(x) for x in value] if isinstance(value, list) else []
