"""Cooperative cancellation scopes: run → job → instance → flow step.

Temporal's Python SDK cancels only the workflow's main task; the job tasks are cancelled by
the interpreter itself through these scopes: cancelling a scope records why, requests
cancellation of the step activities running in it (they learn of it through their heartbeat)
and cancels its children. Steps evaluated after that see the status ``cancelled``, so only
``always()`` / ``cancelled()`` steps still run, as in GitHub Actions.
"""

from __future__ import annotations

from typing import Any

CANCELLED = "cancelled"  # the run was cancelled
TIMED_OUT = "timed_out"  # the run exceeded its timeout
JOB_TIMEOUT = "job_timeout"  # this job instance exceeded its timeout
FAIL_FAST = "fail_fast"  # a sibling fan-out instance failed
STEP_TIMEOUT = "step_timeout"  # a flow step exceeded its timeout


class Scope:
    """A node of the cancellation tree."""

    __slots__ = ("_active", "children", "parent", "reason")

    def __init__(self, parent: Scope | None = None) -> None:
        self.parent = parent
        self.children: list[Scope] = []
        self.reason: str | None = parent.reason if parent is not None else None
        self._active: list[Any] = []
        if parent is not None:
            parent.children.append(self)

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    def child(self) -> Scope:
        return Scope(self)

    def cancel(self, reason: str) -> None:
        """Cancel this scope and its descendants (the first reason sticks)."""
        if self.reason is not None:
            return
        self.reason = reason
        for handle in list(self._active):
            if not handle.done():
                handle.cancel()
        for child in list(self.children):
            child.cancel(reason)

    def track(self, handle: Any) -> None:
        """Cancel ``handle`` (an activity handle) when this scope is cancelled."""
        self._active.append(handle)

    def untrack(self, handle: Any) -> None:
        if handle in self._active:
            self._active.remove(handle)
