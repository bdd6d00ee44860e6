"""The state behind ``--watch``: a run's steps as the log stream and the run reads reveal them.

:class:`LiveModel` is fed two things: the entries of the followed log stream
(``GET /v1/workflows/{id}/logs?follow=true``: log lines and step events) and the run as
``GET /v1/workflows/{id}`` returns it, read again whenever a step event says a state changed.
It keeps, per step (fan-out instances and compensations included), the state, agent, attempt,
times and the last lines of output, and it records each change (a state change, a log line) so
the plain, append-only view can print one line per change.

A read of the run may be ahead of the stream (the stream polls, the read is fresh), so a state
never steps back (``running`` after ``succeeded``), and a step's end that a read shows first is
announced when the stream reaches it, after the step's last lines (or when the stream ends).
The model does no I/O and never reads the clock: callers pass ``now``, so it is tested without
a terminal or a server.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from waterflow_core.matrix import JobMatrix
from waterflow_core.steptask import step_path

from .models import LogEntry, Run, Step
from .render import progress_path

TAIL_LINES = 5
"""Lines of a running step's output the live view shows."""

COMPENSATION_SUFFIX = ".compensate"
"""How a compensation's step id ends (``waterflow_core.interpreter.compensation``); step ids
cannot contain a dot, so no step of the workflow is mistaken for one."""

STATE_WORDS = {"success": "succeeded", "failure": "failed"}
"""The API's step statuses as the live view says them (the others read as they are)."""

_RANK = {"pending": 0, "running": 1}
_TERMINAL_RANK = 2

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN``.

    Step output, errors and agent names come from the steps and the agents: a raw escape
    sequence would reach the user's terminal (set its title, write its clipboard, hide lines),
    so none does.
    """
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def state_word(status: str) -> str:
    """``succeeded`` / ``failed`` / ``running``...: a step status as the view shows it."""
    return STATE_WORDS.get(status, status)


def _rank(status: str) -> int:
    return _RANK.get(status, _TERMINAL_RANK)


@dataclass
class StepView:
    """One step (or fan-out instance, or compensation) as the live view knows it."""

    path: str
    job: str = ""
    """The label of its job instance (``job[#instance]``), once a run read has placed it."""
    name: str = ""
    status: str = "pending"
    agent: str = ""
    attempt: int = 0
    error: list[str] = field(default_factory=list)
    """The error's lines, once the step failed."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))

    @property
    def compensation(self) -> bool:
        """Whether this entry undoes a step (saga compensation)."""
        return self.path.split("#", 1)[0].endswith(COMPENSATION_SUFFIX)

    @property
    def done(self) -> bool:
        """Whether the step has reached a final state."""
        return _rank(self.status) == _TERMINAL_RANK

    def elapsed(self, now: datetime) -> float | None:
        """Seconds the step has run (so far, or in all once done); ``None`` before it starts."""
        if self.started_at is None:
            return None
        end = self.finished_at if self.done and self.finished_at else now
        return max(0.0, (end - self.started_at).total_seconds())


@dataclass
class JobView:
    """One job (or fan-out instance of it): its label, ``runs-on`` and state."""

    label: str
    runs_on: str
    status: str


@dataclass(frozen=True)
class StateChange:
    """A step reached a new state."""

    step: StepView
    status: str


@dataclass(frozen=True)
class LogLine:
    """A step printed a line."""

    path: str
    line: str


Change = StateChange | LogLine


class LiveModel:
    """What ``--watch`` shows of one run, updated from stream entries and run reads."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.run: Run | None = None
        self.steps: dict[str, StepView] = {}
        self.jobs: list[JobView] = []
        self._changes: list[Change] = []
        self._announced: dict[str, str] = {}
        self._ahead: dict[str, StateChange] = {}

    # -- what goes in ------------------------------------------------------------------------

    def feed(self, entry: LogEntry, now: datetime) -> bool:
        """Take one stream entry; true when it is a state change the last run read does not show
        (the caller then reads the run again and passes it to :meth:`update`)."""
        step = self._step(entry.step)
        if entry.kind != "step":
            line = printable(entry.line)
            step.tail.append(line)
            self._changes.append(LogLine(step.path, line))
            return False
        status = entry.status or step.status
        ahead = self._ahead.get(step.path)
        if ahead is not None and ahead.status == status:
            self._changes.append(self._ahead.pop(step.path))  # the stream caught up with the read
            return False
        if status == step.status or _rank(status) < _rank(step.status):
            return False
        self._move(step, status, now)
        return True

    def update(self, run: Run, now: datetime) -> None:
        """Take a fresh read of the run: its jobs, and each step's details and (when not behind
        what the stream said) its state."""
        self.run = run
        self.jobs = [
            JobView(printable(step_path(job.id, None, job.instance)), printable(job.runs_on), job.status)
            for job in run.jobs
        ]
        order: dict[str, StepView] = {}
        for job_label, path, step in _listed(run):
            view = order[path] = self._step(path)
            view.job = printable(job_label)
            view.name = printable(step.name or step.id)
            view.agent = printable(step.agent)
            view.attempt = step.attempt
            view.error = [printable(line) for line in (step.error or "").strip().splitlines()]
            view.started_at = step.started_at or view.started_at
            view.finished_at = step.finished_at or view.finished_at
            # The stream is ordered, a read may be older than its last event: never step back.
            if step.status != view.status and _rank(step.status) >= _rank(view.status):
                self._move(view, step.status, now, announce=_rank(step.status) < _TERMINAL_RANK)
        # Steps only the stream has named so far keep their place after the ones the run lists.
        self.steps = order | {path: view for path, view in self.steps.items() if path not in order}

    # -- what comes out ----------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether the last run read found the run finished."""
        return self.run is not None and self.run.done

    def settle(self) -> None:
        """The stream has ended: announce the ends that only a read has shown."""
        self._changes += self._ahead.values()
        self._ahead.clear()

    def changes(self) -> list[Change]:
        """The changes since the last call, in order; each state change once."""
        taken, self._changes = self._changes, []
        out: list[Change] = []
        for change in taken:
            if isinstance(change, StateChange):
                if self._announced.get(change.step.path) == change.status:
                    continue
                self._announced[change.step.path] = change.status
            out.append(change)
        return out

    @property
    def matrix(self) -> list[JobMatrix]:
        """The per-server result matrices of the fan-out jobs, as the last run read has them."""
        return self.run.matrix if self.run is not None else []

    def running(self) -> list[StepView]:
        """The steps running now."""
        return [step for step in self.steps.values() if step.status == "running"]

    # -- helpers -----------------------------------------------------------------------------

    def _step(self, path: str) -> StepView:
        view = self.steps.get(path)
        if view is None:
            view = self.steps[path] = StepView(path=printable(path), name=printable(path.rsplit("/", 1)[-1]))
        return view

    def _move(self, step: StepView, status: str, now: datetime, *, announce: bool = True) -> None:
        step.status = status
        # The run read fills in the server's times; until then the view counts from now.
        if status == "running" and step.started_at is None:
            step.started_at = now
        if step.done and step.finished_at is None:
            step.finished_at = now
        change = StateChange(step, status)
        if announce:
            self._changes.append(change)
        else:
            self._ahead[step.path] = change


def _listed(run: Run) -> Iterator[tuple[str, str, Step]]:
    """``(job label, step path, step)`` for each step of the run in tree order, then the
    compensations not listed with a job (each is normally also one of its job's steps)."""
    seen: set[str] = set()
    for job, step in run.steps():
        path = progress_path(job, step)
        seen.add(path)
        yield step_path(job.id, None, job.instance), path, step
    for step in run.compensations:
        path = step_path(step.job, step.id, step.instance)
        if path not in seen:
            yield step_path(step.job, None, step.instance), path, step


def plain_lines(changes: list[Change], now: datetime) -> list[str]:
    """The append-only view: one line per state change and per log line (for CI logs)."""
    lines: list[str] = []
    for change in changes:
        if isinstance(change, LogLine):
            lines.append(f"[{change.path}] | {change.line}")
            continue
        step = change.step
        done = _rank(change.status) == _TERMINAL_RANK
        text = f"[{step.path}] {'compensation ' if step.compensation else ''}{state_word(change.status)}"
        if step.agent:
            text += f" on {step.agent}"
        if step.attempt > 1:
            text += f" (attempt {step.attempt})"
        elapsed = step.elapsed(now)
        if done and elapsed is not None:
            text += f" in {format_elapsed(elapsed)}"
        if done and step.error:
            text += f": {step.error[0]}"
        lines.append(text)
        if done:
            lines += [f"    {line}" for line in step.error[1:]]
    return lines


def format_elapsed(seconds: float) -> str:
    """``4.2s``, ``3m05s``, ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
