"""A step's DSL timeouts and retry policy as Temporal activity options.

Defaults (documented in docs/reference/execution.md): one attempt (ops steps are often not
idempotent, so retrying is opt-in), 1 h per attempt, 30 s heartbeat timeout (the agent heartbeats
on its own while a node runs, so a silent agent means a dead agent or a lost network).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy

from ..dsl.models import Defaults, Retry
from ..errors import ErrorCode

DEFAULT_STEP_TIMEOUT = 3600.0
DEFAULT_HEARTBEAT_TIMEOUT = 30.0
ALWAYS_NON_RETRYABLE = (ErrorCode.BAD_INPUT, ErrorCode.UNKNOWN_NODE)


@dataclass(frozen=True, slots=True)
class ActivityOptions:
    """The per-step options passed to ``workflow.start_activity``."""

    start_to_close: timedelta
    heartbeat: timedelta
    retry_policy: RetryPolicy
    max_attempts: int
    timeout_seconds: float
    heartbeat_seconds: float


def merged_retry(own: Retry | None, default: Retry | None) -> Retry:
    """The step's retry: keys it sets win over ``defaults.retry``, the rest come from there."""
    if own is None:
        return default or Retry()
    if default is None:
        return own
    explicit = {name: getattr(own, name) for name in own.model_fields_set}
    return default.model_copy(update=explicit)


def retry_policy(retry: Retry) -> RetryPolicy:
    """Temporal's policy for a DSL ``retry`` (always bounded: Temporal's own default is forever)."""
    non_retryable = list(dict.fromkeys([*retry.non_retryable, *ALWAYS_NON_RETRYABLE]))
    return RetryPolicy(
        initial_interval=timedelta(seconds=retry.initial_interval),
        backoff_coefficient=retry.backoff,
        maximum_interval=timedelta(seconds=retry.max_interval) if retry.max_interval else None,
        maximum_attempts=retry.max_attempts,
        non_retryable_error_types=non_retryable,
    )


def activity_options(
    *,
    timeout: float | None,
    heartbeat_timeout: float | None,
    retry: Retry | None,
    defaults: Defaults,
) -> ActivityOptions:
    """Options of one step (or compensation) activity; the step's own keys win over defaults."""
    seconds = timeout or defaults.timeout or DEFAULT_STEP_TIMEOUT
    heartbeat = heartbeat_timeout or defaults.heartbeat_timeout or DEFAULT_HEARTBEAT_TIMEOUT
    # A heartbeat timeout longer than the attempt itself could never fire; keep it meaningful.
    heartbeat = min(heartbeat, seconds)
    merged = merged_retry(retry, defaults.retry)
    return ActivityOptions(
        start_to_close=timedelta(seconds=seconds),
        heartbeat=timedelta(seconds=heartbeat),
        retry_policy=retry_policy(merged),
        max_attempts=merged.max_attempts,
        timeout_seconds=seconds,
        heartbeat_seconds=heartbeat,
    )
