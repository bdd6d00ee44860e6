"""Step logs from what Temporal holds: step results and the heartbeats of running steps.

A running step's heartbeat details carry ``{"lines": [recent lines], "count": lines so far}``; a
finished step's result carries its ``log_tail``. :class:`LogTracker` remembers what it has
already emitted for each step and turns each new snapshot into only the new entries, so a
follower sees every line once (a line that scrolled out of both windows between two polls is
reported as skipped rather than silently lost).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from waterflow_core.runs import RunProgress, StepProgress
from waterflow_core.steptask import step_path

from .models import LogEntry

TERMINAL_STEP_STATUSES = frozenset({"success", "failure", "skipped", "cancelled"})


def progress_path(job_id: str, job_instance: str | None, step: StepProgress) -> str:
    """``job/step[#instance]``, the activity id the Temporal UI shows."""
    return step_path(job_id, step.id, step.instance or job_instance)


@dataclass
class _StepState:
    emitted: list[str] = field(default_factory=list)
    count: int = 0
    status: str = "pending"
    final: bool = False


def _unseen(emitted: list[str], window: list[str]) -> list[str]:
    """The lines of ``window`` (the latest lines of a step) not yet in ``emitted``."""
    seen = len(emitted)
    if seen <= len(window) and window[:seen] == emitted:
        return window[seen:]  # the window still starts at the step's first line
    # Otherwise the window starts later: find where the tail of what was emitted overlaps it.
    for k in range(min(seen, len(window)), 0, -1):
        if emitted[-k:] == window[:k]:
            return window[k:]
    return window


class LogTracker:
    """Turns successive snapshots of a run into new :class:`LogEntry` items."""

    def __init__(self) -> None:
        self._steps: dict[str, _StepState] = {}

    def _state(self, path: str) -> _StepState:
        return self._steps.setdefault(path, _StepState())

    def from_heartbeat(self, path: str, details: Mapping[str, Any]) -> list[LogEntry]:
        """New lines from a running step's heartbeat ``{"lines": [...], "count": n}``."""
        state = self._state(path)
        if state.final:
            return []
        lines = [str(line) for line in details.get("lines") or []]
        try:
            count = int(details.get("count", len(lines)))
        except (TypeError, ValueError):
            count = len(lines)
        new = count - state.count
        if new <= 0:
            return []
        entries: list[LogEntry] = []
        fresh = lines[-new:] if new <= len(lines) else lines
        if new > len(lines):
            entries.append(LogEntry(step=path, line=f"... {new - len(lines)} line(s) not shown ..."))
        entries += [LogEntry(step=path, line=line) for line in fresh]
        state.emitted += fresh
        state.count = count
        return entries

    def from_progress(self, progress: RunProgress) -> list[LogEntry]:
        """Step events and the lines of steps that finished since the last snapshot."""
        entries: list[LogEntry] = []
        for path, step in progress_steps(progress):
            state = self._state(path)
            if step.status not in (state.status, "pending"):
                if step.status == "running" or step.status in TERMINAL_STEP_STATUSES:
                    if step.status in TERMINAL_STEP_STATUSES:
                        entries += self._final_lines(path, state, step.log_tail)
                    entries.append(self._event(path, step))
                state.status = step.status
        return entries

    def _final_lines(self, path: str, state: _StepState, tail: Iterable[str]) -> list[LogEntry]:
        if state.final:
            return []
        state.final = True
        new = _unseen(state.emitted, list(tail))
        state.emitted += new
        return [LogEntry(step=path, line=line) for line in new]

    @staticmethod
    def _event(path: str, step: StepProgress) -> LogEntry:
        detail: str = step.status
        if step.agent:
            detail += f" on {step.agent}"
        if step.attempt > 1:
            detail += f" (attempt {step.attempt})"
        if step.error:
            detail += f": {step.error}"
        return LogEntry(kind="step", step=path, status=step.status, line=detail)


def progress_steps(progress: RunProgress) -> Iterator[tuple[str, StepProgress]]:
    """Every step of a run with its path, in tree order, then the compensations not listed
    with a job (each compensation is normally also one of its job instance's steps)."""
    seen: set[str] = set()
    for job in progress.jobs:
        for step in job.steps:
            path = progress_path(job.id, job.instance, step)
            seen.add(path)
            yield path, step
    for step in progress.compensations:
        path = step_path(step.job, step.id, step.instance)
        if path not in seen:
            yield path, step


def snapshot_entries(progress: RunProgress) -> list[LogEntry]:
    """Every entry of a run as it stands (``GET .../logs`` without ``follow``)."""
    tracker = LogTracker()
    entries: list[LogEntry] = []
    for path, step in progress_steps(progress):
        if step.status == "pending":
            continue
        if step.status == "running":
            entries.append(LogEntry(kind="step", step=path, status="running", line="running"))
            entries += [LogEntry(step=path, line=line) for line in step.log_tail]
            continue
        entries += tracker._final_lines(path, tracker._state(path), step.log_tail)
        entries.append(LogTracker._event(path, step))
    return entries
