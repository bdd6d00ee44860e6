"""Run statuses: Temporal's execution status ↔ the API's, and the visibility filters for them."""

from __future__ import annotations

from temporalio.client import WorkflowExecutionStatus

from waterflow_core.runs import WORKFLOW_TYPE, RunStatus

API_STATUSES: tuple[RunStatus, ...] = ("running", "succeeded", "failed", "cancelled", "timed_out")

_FROM_TEMPORAL: dict[WorkflowExecutionStatus, RunStatus] = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "succeeded",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "failed",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "running",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
}

_TO_VISIBILITY: dict[str, tuple[str, ...]] = {
    "running": ("Running",),
    "succeeded": ("Completed",),
    "failed": ("Failed", "Terminated"),
    "cancelled": ("Canceled",),
    "timed_out": ("TimedOut",),
}


def api_status(status: WorkflowExecutionStatus | None) -> RunStatus:
    """The API status for Temporal's execution status (unknown counts as running)."""
    if status is None:
        return "running"
    return _FROM_TEMPORAL.get(status, "running")


def temporal_status_name(status: WorkflowExecutionStatus | None) -> str:
    """Temporal's status as its UI spells it (``Running``, ``Completed``, ...)."""
    if status is None:
        return "Unknown"
    return {
        WorkflowExecutionStatus.CANCELED: "Canceled",
        WorkflowExecutionStatus.CONTINUED_AS_NEW: "ContinuedAsNew",
        WorkflowExecutionStatus.TIMED_OUT: "TimedOut",
    }.get(status, status.name.capitalize())


def parse_status_filter(raw: str | None) -> list[str]:
    """``status=running,failed`` → ``["running", "failed"]``; raises ``ValueError`` on unknown ones."""
    if not raw:
        return []
    wanted = [part.strip().lower() for part in raw.split(",") if part.strip()]
    unknown = [s for s in wanted if s not in _TO_VISIBILITY]
    if unknown:
        raise ValueError(
            f"unknown status {', '.join(map(repr, unknown))}; expected one of {', '.join(API_STATUSES)}"
        )
    return list(dict.fromkeys(wanted))


def visibility_query(statuses: list[str]) -> str:
    """The Temporal list filter for Waterflow runs in any of ``statuses`` (all when empty)."""
    query = f"WorkflowType = '{WORKFLOW_TYPE}'"
    names = [name for status in statuses for name in _TO_VISIBILITY[status]]
    if names:
        query += " AND (" + " OR ".join(f"ExecutionStatus = '{n}'" for n in names) + ")"
    return query
