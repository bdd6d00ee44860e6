"""Text rendering of runs for the terminal (the ``--output text`` of the CLI)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from typing import Any

from waterflow_core.steptask import step_path

from .matrix_table import matrix_lines
from .models import Job, Run, Step

STATUS_MARKS = {
    "success": "ok",
    "failure": "FAILED",
    "skipped": "skipped",
    "cancelled": "cancelled",
    "running": "running",
    "pending": "pending",
}


def progress_path(job: Job, step: Step) -> str:
    """``job/step[#instance]`` as in the Temporal UI."""
    return step_path(job.id, step.id, step.instance or job.instance)


def format_value(value: Any) -> str:
    """An output value: strings as they are, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


LOGGED_OUTPUTS = frozenset({"stdout", "stderr"})
"""Outputs that repeat what the log lines already show (``exec/*`` nodes)."""


def _shown_outputs(step: Step, with_logs: bool) -> dict[str, Any]:
    """Outputs worth a line: not empty, and not a repeat of the log lines shown above them."""
    return {
        key: value
        for key, value in step.outputs.items()
        if value not in ("", None) and not (with_logs and key in LOGGED_OUTPUTS)
    }


def _value_lines(key: str, value: Any, indent: str) -> list[str]:
    first, *rest = format_value(value).rstrip("\n").split("\n") or [""]
    pad = indent + " " * (len(key) + 3)
    return [f"{indent}{key} = {first}", *(f"{pad}{line}" for line in rest)]


def step_lines(job: Job, step: Step, *, with_logs: bool = True) -> list[str]:
    """How one step reads: a status line, then its log tail, outputs and error, indented."""
    head = f"[{progress_path(job, step)}] {STATUS_MARKS.get(step.status, step.status)}"
    if step.succeeded_in:
        head += f": succeeded in run {step.succeeded_in}"
    elif step.reason and step.status == "skipped":
        head += f": {step.reason}"
    elif step.agent:
        head += f" on {step.agent}"
    if step.attempt > 1 or (step.status == "running" and step.attempt):
        head += f" (attempt {step.attempt})"
    lines = [head]
    if with_logs:
        lines += [f"    | {line}" for line in step.log_tail]
    for key, value in _shown_outputs(step, with_logs).items():
        lines += _value_lines(key, value, "    ")
    lines += attempt_error_lines(step)
    lines += waiting_lines(step)
    if step.error:
        lines += [f"    error: {part}" for part in step.error.splitlines() or [""]]
    return lines


WIDTH = 120
"""Lines of the ``waiting`` section longer than this are wrapped."""


def _wrapped(text: str, indent: str) -> list[str]:
    # ``status`` indents a step's lines once more under its job: wrap so that they still fit.
    return textwrap.wrap(
        text, WIDTH - 4, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False
    ) or [indent.rstrip()]


def waiting_lines(step: Step, indent: str = "    ") -> list[str]:
    """What a waiting approval gate waits for, and how to answer it (wrapped at 120 columns)."""
    waiting = step.waiting
    if not waiting:
        return []
    signal = waiting.get("signal", "")
    head = f"waiting for signal {signal}"
    if waiting.get("deadline"):
        head += f" until {waiting['deadline']}"
    parts = [head]
    if waiting.get("message"):
        parts.append(f"message: {waiting['message']}")
    if waiting.get("approvers"):
        parts.append(f"approvers: {', '.join(waiting['approvers'])}")
    fields = waiting.get("inputs") or {}
    if fields:
        shown = ", ".join(
            f"{name} ({spec.get('type', 'string')}{', required' if spec.get('required') else ''})"
            for name, spec in fields.items()
        )
        parts.append(f"fields: {shown}")
    parts += [f"refused: {why}" for why in waiting.get("refused") or []]
    parts.append(f"answer: waterflow signal <run id> {signal} [--data JSON] [--reject]")
    return [line for part in parts for text in part.splitlines() or [""] for line in _wrapped(text, indent)]


def attempt_error_lines(step: Step, indent: str = "    ") -> list[str]:
    """``attempt N failed: ...`` for each earlier attempt of a retried step, oldest first."""
    # The list keeps the last attempts only: number them back from the attempt that ended it.
    first = max(1, step.attempt - len(step.attempt_errors)) if step.attempt else 1
    lines: list[str] = []
    for number, error in enumerate(step.attempt_errors, start=first):
        head, *rest = error.splitlines() or [""]
        lines.append(f"{indent}attempt {number} failed: {head}")
        lines += [f"{indent}  {part}" for part in rest]
    return lines


def compensation_lines(run: Run) -> list[str]:
    """The ``compensations`` section: each compensation in the order it ran, and how it ended."""
    if not run.compensations:
        return []
    lines = ["  compensations (in the order they ran):"]
    for number, step in enumerate(run.compensations, start=1):
        head = f"    {number}. [{step_path(step.job, step.id, step.instance)}] "
        head += STATUS_MARKS.get(step.status, step.status)
        if step.agent:
            head += f" on {step.agent}"
        lines.append(head)
        lines += attempt_error_lines(step, "       ")
        if step.error:
            lines += [f"       error: {part}" for part in step.error.splitlines() or [""]]
    return lines


def lock_line(waiting: dict[str, Any]) -> str:
    """What a run or job waiting for its ``concurrency:`` lock waits for."""
    line = f"waiting for lock {waiting.get('key', '')!r} ({waiting.get('policy', 'queue')})"
    if waiting.get("holder"):
        line += f" held by run {waiting['holder']}"
    return line + (f" since {waiting['since']}" if waiting.get("since") else "")


def run_lines(run: Run, *, with_logs: bool = False) -> list[str]:
    """A run as a header and its job/step tree."""
    lines = [f"run {run.id}  {run.name}  {run.status}"]
    if run.started_at:
        lines.append(f"  started  {run.started_at.isoformat(timespec='seconds')}")
    if run.finished_at:
        lines.append(f"  finished {run.finished_at.isoformat(timespec='seconds')}")
    if run.error:
        lines.append(f"  error: {run.error}")
    if run.check:
        lines.append("  check run: steps ran their check: or were skipped")
    if run.rerun_of:
        lines.append(f"  rerun of {run.rerun_of}")
    if run.reruns:
        lines.append(f"  reruns   {', '.join(run.reruns)}")
    if run.waiting_for_lock:
        lines.append(f"  {lock_line(run.waiting_for_lock)}")
    for job in run.jobs:
        label = step_path(job.id, None, job.instance)
        skipped = f": succeeded in run {job.succeeded_in}" if job.succeeded_in else ""
        lines.append(f"  job {label} ({job.runs_on}) {job.status}{skipped}")
        if job.waiting_for_lock:
            lines.append(f"    {lock_line(job.waiting_for_lock)}")
        for step in job.steps:
            lines += [f"    {line}" for line in step_lines(job, step, with_logs=with_logs)]
        for key, value in job.outputs.items():
            lines += _value_lines(f"output {key}", value, "    ")
    lines += matrix_lines(run.matrix)
    return lines + compensation_lines(run)


def final_line(run: Run) -> str:
    """The one line that ends ``submit --wait``."""
    line = f"run {run.id} {run.status}"
    return f"{line}: {run.error}" if run.error and not run.succeeded else line


class ProgressPrinter:
    """Prints each step once, when it finishes (or starts), while polling a run."""

    def __init__(self) -> None:
        self._shown: dict[str, str] = {}
        self._summarized = False

    def updates(self, run: Run) -> Iterable[str]:
        """Lines for what changed since the last call."""
        for job, step in run.steps():
            path = progress_path(job, step)
            before = self._shown.get(path)
            if step.status in (before, "pending"):
                continue
            self._shown[path] = step.status
            if step.status == "running":
                suffix = f" on {step.agent}" if step.agent else ""
                yield f"[{path}] running{suffix}"
            else:
                yield from step_lines(job, step)
        if run.done and not self._summarized:
            # Each compensation was printed as it finished; this says in what order they ran.
            self._summarized = True
            yield from compensation_lines(run)
