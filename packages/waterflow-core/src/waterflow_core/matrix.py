"""The per-server result matrix of a fan-out job: one row per instance, one column per step.

Computed from a run's :class:`~.runs.RunProgress` only, so the API (``GET /v1/workflows/{id}``),
the run's finished event and ``waterflow status`` show the same cells. A cell reads ``ok``,
``failed``, ``timed-out`` (the step's timeout fired, or no agent picked it up), ``skipped``,
``cancelled``, ``running`` or ``pending``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from .runs import JobProgress, RunProgress, StepProgress

Cell = Literal["ok", "failed", "timed-out", "skipped", "cancelled", "running", "pending"]

MAX_ROW_ERROR_CHARS = 300
"""A row's error is cut here: the step's own message is in the progress, whole."""

_TOP_LEVEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
"""A job's own step id (nested steps read ``each[0]/x``, compensations ``x.compensate``)."""

_CELLS: dict[str, Cell] = {
    "success": "ok",
    "failure": "failed",
    "skipped": "skipped",
    "cancelled": "cancelled",
    "running": "running",
    "pending": "pending",
}


class MatrixRow(BaseModel):
    """One instance (a server, or a server and matrix combination) of a fan-out job."""

    instance: str
    batch: int | None = None
    """The rolling batch it belongs to (``strategy.batch``), else null."""
    status: Cell
    """The instance's own result (a server without a live agent is ``failed`` with every cell
    ``skipped``)."""
    cells: list[Cell]
    """One per column, in :attr:`JobMatrix.steps` order."""
    error: str | None = None
    """Why the instance failed or was not started, cut at 300 characters."""


class JobMatrix(BaseModel):
    """The result matrix of one fan-out job."""

    job: str
    steps: list[str] = Field(default_factory=list)
    """The columns: the job's own step ids, in order (nested flow steps are not columns)."""
    rows: list[MatrixRow] = Field(default_factory=list)
    rows_left_out: int = 0
    """Rows not listed because of a bound (the run's finished event); 0 in the API."""


def cell(step: StepProgress) -> Cell:
    """What one step of one instance shows: its outcome (before ``continue-on-error``)."""
    if step.status == "failure" and step.timed_out:
        return "timed-out"
    return _CELLS.get(step.status, "pending")


def row(instance: JobProgress, columns: list[str]) -> MatrixRow:
    """The row of one fan-out instance's progress entry."""
    by_id = {s.id: s for s in instance.steps}
    cells: list[Cell] = [cell(by_id[c]) if c in by_id else "pending" for c in columns]
    status = _CELLS.get(instance.status, "pending")
    if status == "failed" and "timed-out" in cells:
        status = "timed-out"
    error = instance.error
    if error is not None and len(error) > MAX_ROW_ERROR_CHARS:
        error = error[: MAX_ROW_ERROR_CHARS - 1] + "…"
    return MatrixRow(instance=instance.instance or "", batch=instance.batch, status=status, cells=cells, error=error)


def job_matrices(progress: RunProgress, max_rows: int | None = None) -> list[JobMatrix]:
    """The matrix of every fan-out job of ``progress`` that has instances, in job order.

    ``max_rows`` bounds the rows of all matrices together: rows that are not ``ok`` are kept
    first (they are what a report is read for), each matrix keeps its instance order, and
    ``rows_left_out`` counts the others.
    """
    matrices: list[JobMatrix] = []
    for job in progress.jobs:
        if job.instance is not None:
            continue
        instances = [j for j in progress.jobs if j.id == job.id and j.instance is not None]
        if not instances:
            continue
        columns = [s.id for s in instances[0].steps if _TOP_LEVEL.match(s.id)]
        matrices.append(JobMatrix(job=job.id, steps=columns, rows=[row(i, columns) for i in instances]))
    if max_rows is not None:
        _bound(matrices, max_rows)
    return matrices


def _bound(matrices: list[JobMatrix], max_rows: int) -> None:
    keep: set[tuple[int, int]] = set()
    for wanted in (lambda r: r.status != "ok", lambda r: r.status == "ok"):
        for m, matrix in enumerate(matrices):
            for n, one in enumerate(matrix.rows):
                if len(keep) < max_rows and wanted(one):
                    keep.add((m, n))
    for m, matrix in enumerate(matrices):
        kept = [one for n, one in enumerate(matrix.rows) if (m, n) in keep]
        matrix.rows_left_out = len(matrix.rows) - len(kept)
        matrix.rows = kept
