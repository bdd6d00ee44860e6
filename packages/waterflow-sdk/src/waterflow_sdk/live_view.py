"""How ``--watch`` draws a :class:`~.live_model.LiveModel` with rich: one line per job and step,
then the per-server result matrix of each fan-out job (as ``waterflow status`` shows it).

Every piece of text from the server goes in as a rich ``Text`` (never as markup, so a log line
reading ``[red]`` stays literal), already passed through :func:`~.live_model.printable`. Lines
are cut at the terminal's width rather than wrapped, so the view keeps its height.
"""

from __future__ import annotations

from datetime import datetime

from rich.console import Group
from rich.text import Text

from .live_model import LiveModel, StepView, format_elapsed, printable, state_word
from .matrix_table import matrix_lines

STATE_STYLES = {
    "pending": "dim",
    "running": "bold yellow",
    "success": "green",
    "failure": "bold red",
    "cancelled": "magenta",
    "skipped": "dim",
    "succeeded": "bold green",
    "failed": "bold red",
    "timed_out": "bold red",
}

HINT = "Ctrl-C stops watching; the run goes on."


def _line(*parts: tuple[str, str] | str) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for part in parts:
        if isinstance(part, str):
            text.append(part)
        else:
            text.append(*part)
    return text


def _state(status: str, width: int = 0) -> tuple[str, str]:
    return state_word(status).ljust(width), STATE_STYLES.get(status, "")


def _step_lines(step: StepView, name_width: int, now: datetime) -> list[Text]:
    label = f"↺ {step.name}" if step.compensation else step.name
    elapsed = step.elapsed(now)
    lines = [
        _line(
            "    ",
            (label.ljust(name_width), "bold" if step.status == "running" else ""),
            "  ",
            _state(step.status, 9),
            "  ",
            (step.agent or "-").ljust(12),
            "  ",
            (f"#{step.attempt}" if step.attempt else "").ljust(4),
            "  ",
            format_elapsed(elapsed) if elapsed is not None else "",
        )
    ]
    if step.status == "running":
        lines += [_line("      │ ", (line, "dim")) for line in step.tail]
    elif step.done and step.error:
        lines.append(_line("      ", (f"error: {step.error[0]}", "red")))
    return lines


def render(model: LiveModel, now: datetime) -> Group:
    """The whole view: the run's header, then each job with its steps."""
    run = model.run
    status = run.status if run else "pending"
    header = _line(("run ", "bold"), (printable(model.run_id), "bold"))
    if run and run.name:
        header.append(f"  {printable(run.name)}")
    header.append("  ")
    header.append(*_state(status))
    if run and run.started_at:
        end = run.finished_at if run.done and run.finished_at else now
        header.append(f"  {format_elapsed(max(0.0, (end - run.started_at).total_seconds()))}")
    lines = [header]
    if run and run.error and run.done:
        first = run.error.strip().splitlines()[0] if run.error.strip() else ""
        lines.append(_line("  ", (f"error: {printable(first)}", "red")))
    steps = list(model.steps.values())
    width = max((len(step.name) + 2 * step.compensation for step in steps), default=0)
    placed: set[str] = set()
    for job in model.jobs:
        lines.append(_line("  job ", (job.label, "bold"), f" ({job.runs_on})  ", _state(job.status)))
        for step in steps:
            if step.job == job.label:
                lines += _step_lines(step, width, now)
                placed.add(step.path)
    for step in steps:
        if step.path not in placed:  # named by the stream, not yet by a run read
            lines += _step_lines(step, width, now)
    # matrix_lines cuts and cleans every cell; printable() is the belt to its braces
    lines += [_line(printable(line)) for line in matrix_lines(model.matrix)]
    if not model.done:
        lines.append(_line((HINT, "dim")))
    return Group(*lines)
