"""Activity failures as the one-line messages users read (``step db/migrate failed after ...``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

from ..dsl.durations import format_duration

RUN_FAILED = "WaterflowRunFailed"
RUN_TIMED_OUT = "WaterflowRunTimedOut"
"""ApplicationError types the workflow fails with (the server maps them to run statuses)."""


@dataclass(slots=True)
class StepFailure:
    """What went wrong with a step's activity."""

    message: str
    outcome: str = "failure"  # or "cancelled"
    attempt: int = 0
    agent: str = ""
    log_tail: list[str] = field(default_factory=list)


def details_of(err: ApplicationError) -> dict[str, Any]:
    """The first detail of an agent's error when it is a mapping (agent, attempt, log_tail...)."""
    try:
        details = err.details
    except Exception:  # undecodable details must not break the run
        return {}
    return details[0] if details and isinstance(details[0], dict) else {}


def describe(
    step_path: str,
    err: BaseException,
    *,
    max_attempts: int,
    timeout: float,
    heartbeat: float,
) -> StepFailure:
    """Turn the error of ``await``-ing a step activity into a :class:`StepFailure`."""
    if not isinstance(err, ActivityError):
        if isinstance(err, CancelledError | _asyncio_cancelled()):
            return StepFailure(f"step {step_path} was cancelled", outcome="cancelled")
        return StepFailure(f"step {step_path} failed: {err}")
    cause = err.cause
    attempts = max_attempts if err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED else 0
    info: dict[str, Any] = {}
    if isinstance(cause, CancelledError):
        return StepFailure(f"step {step_path} was cancelled", outcome="cancelled", attempt=attempts)
    if isinstance(cause, TimeoutError):
        if cause.type == TimeoutType.HEARTBEAT:
            reason = f"its agent stopped responding (no heartbeat for {format_duration(heartbeat)})"
        elif cause.type == TimeoutType.SCHEDULE_TO_START:
            reason = "no agent picked it up in time"
        else:
            reason = f"timed out after {format_duration(timeout)}"
    elif isinstance(cause, ApplicationError):
        info = details_of(cause)
        reason = cause.message or cause.type or "failed"
    elif cause is not None:
        reason = str(cause) or type(cause).__name__
    else:
        reason = err.message or "failed"
    # The agent prefixes its messages with the step path; the sentence below already names it.
    reason = reason.removeprefix(f"{step_path}: ")
    if not attempts and isinstance(info.get("attempt"), int):
        attempts = info["attempt"]
    if attempts > 1:
        message = f"step {step_path} failed after {attempts} attempts: {reason}"
    else:
        message = f"step {step_path} failed: {reason}"
    tail = info.get("log_tail")
    return StepFailure(
        message,
        attempt=attempts,
        agent=str(info.get("agent") or ""),
        log_tail=[str(x) for x in tail] if isinstance(tail, list) else [],
    )


def _asyncio_cancelled() -> type[BaseException]:
    import asyncio

    return asyncio.CancelledError
