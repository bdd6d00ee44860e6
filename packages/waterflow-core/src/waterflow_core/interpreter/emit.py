"""Run events, as the workflow emits them (the event contract: docs/reference/execution.md).

The workflow holds one :class:`Emitter`. Every emit takes the next sequence number, replaying or
not, so an event's id ``<workflow id>/<run id>/<seq>`` is the same each time the workflow code
passes that point (a replay after a worker restart, a retried workflow task); events are handed
to :func:`waterflow_core.events.publish` only when the code runs for the first time, never while
a history is replayed. Delivery is at-least-once (a retried workflow task publishes again under
the same ids): receivers deduplicate by id.

Emitting issues no Temporal command, so it changes nothing in a run's history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from temporalio import workflow

from .. import events
from ..matrix import job_matrices
from ..runs import RunProgress, StepProgress

StepKind = Literal["step", "compensation"]

MAX_EVENT_MATRIX_ROWS = 100
"""Rows of result matrices a run's finished event carries in all (failed ones first): a webhook
body stays small whatever the fleet; the API lists every row."""


def iso(moment: datetime | None) -> str | None:
    """``moment`` in ISO 8601 UTC with a ``Z`` suffix (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Emitter:
    """Numbers and publishes one run's events."""

    def __init__(self, name: str) -> None:
        info = workflow.info()
        self._prefix = f"{info.workflow_id}/{info.run_id}"
        self._run_id = info.run_id
        self._name = name
        self.workflow_id = info.workflow_id
        """The events' ``workflow_id``: the run's. A loop chunk's child workflow sets its run's
        here, so its step events name the run; their ids keep the chunk's own prefix (unique)."""
        self.seq = 0
        """Events emitted so far (replayed ones included)."""

    def emit(self, event_type: str, /, **fields: Any) -> None:
        """Emit an event of type ``event_type`` with ``fields`` besides the common ones."""
        self.seq += 1
        if workflow.unsafe.is_replaying():
            return
        event: dict[str, Any] = {
            "id": f"{self._prefix}/{self.seq}",
            "type": event_type,
            "workflow_id": self.workflow_id,
            "run_id": self._run_id,
            "name": self._name,
            "ts": iso(workflow.now()),
            **fields,
        }
        events.publish(event)

    def run_started(self) -> None:
        """``run.started``."""
        self.emit("run.started")

    def run_finished(
        self,
        status: str,
        error: str | None,
        started_at: datetime | None,
        finished_at: datetime | None,
        progress: RunProgress | None = None,
    ) -> None:
        """``run.<status>`` (succeeded, failed, cancelled, timed_out), with the fan-out jobs'
        result matrices from ``progress`` (at most :data:`MAX_EVENT_MATRIX_ROWS` rows in all)."""
        # Not computed while replaying: the event is not published then.
        replaying = workflow.unsafe.is_replaying()
        matrix = job_matrices(progress, MAX_EVENT_MATRIX_ROWS) if progress is not None and not replaying else []
        self.emit(
            f"run.{status}",
            status=status,
            error=error,
            started_at=iso(started_at),
            finished_at=iso(finished_at),
            matrix=[m.model_dump(mode="json") for m in matrix],
        )

    def step_started(self, job: str, entry: StepProgress, path: str, kind: StepKind = "step") -> None:
        """``step.started`` of the step (or compensation) whose progress is ``entry``."""
        self.emit("step.started", **_step_fields(job, entry, path, kind))

    def step_finished(self, job: str, entry: StepProgress, path: str, kind: StepKind = "step") -> None:
        """``step.finished``, from ``entry`` once its status is final."""
        self.emit(
            "step.finished",
            **_step_fields(job, entry, path, kind),
            status=entry.status,
            conclusion=entry.conclusion or entry.status,
            error=entry.error,
            agent=entry.agent,
        )

    def step_waiting(self, job: str, entry: StepProgress, path: str) -> None:
        """``step.waiting``: ``entry`` is an approval gate that started waiting."""
        waiting = entry.waiting
        assert waiting is not None
        self.emit(
            "step.waiting",
            **_step_fields(job, entry, path, "step"),
            signal=waiting.signal,
            approvers=list(waiting.approvers),
            deadline=iso(waiting.deadline),
            message=waiting.message,
        )


def _step_fields(job: str, entry: StepProgress, path: str, kind: StepKind) -> dict[str, Any]:
    return {
        "job": job,
        "instance": entry.instance,
        "step": entry.id,
        "path": path,
        "uses": entry.uses,
        "step_name": entry.name,
        "kind": kind,
    }
