"""``waterflow schedule``: runs started on a cron or an interval by Temporal Schedules (ADR 0037)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .cli import _api_error, _client, _emit_model, _parse_inputs, _when, client_options
from .output import STRUCTURED, emit, say
from .schedules import OVERLAP_POLICIES


@click.group()
def schedule() -> None:
    """Schedules: a workflow run on a cron or an interval, kept by Temporal (survives restarts)."""


@schedule.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--cron",
    "crons",
    multiple=True,
    metavar="EXPR",
    help="5-field cron expression ('*/5 * * * *', @daily); repeatable.",
)
@click.option(
    "--interval", metavar="DURATION", help="Fire every DURATION (30s, 5m, 1h30m) besides or instead of --cron."
)
@click.option("-i", "--input", "inputs", multiple=True, metavar="KEY=VALUE", help="An input value (repeatable).")
@click.option(
    "--id", "schedule_id", help="Schedule id (default: from the workflow's name); each run's id is it plus the time."
)
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone the cron is read in.")
@click.option(
    "--overlap",
    type=click.Choice(OVERLAP_POLICIES),
    default="skip",
    show_default=True,
    help="When a fire comes while the previous run still runs.",
)
@click.option("--paused", is_flag=True, help="Create it paused.")
@click.option("--note", default="", help="A note shown with the schedule.")
@client_options
def schedule_create(
    file: Path,
    crons: tuple[str, ...],
    interval: str | None,
    inputs: tuple[str, ...],
    schedule_id: str | None,
    timezone: str,
    overlap: str,
    paused: bool,
    note: str,
    server: str,
    output: str,
) -> None:
    """Create a schedule that runs FILE; the workflow and inputs are checked once, now. Prints its id."""
    from .errors import WaterflowAPIError

    if not crons and interval is None:
        raise click.UsageError("give --cron, --interval or both")
    values = _parse_inputs(inputs)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from None
    with _client(server) as client:
        try:
            created = client.create_schedule(
                text,
                cron=list(crons),
                interval=interval,
                inputs=values,
                id=schedule_id,
                timezone=timezone,
                overlap=overlap,
                paused=paused,
                note=note,
            )
        except WaterflowAPIError as exc:
            _api_error(exc, source=str(file), text=text, given=values)
    if output in STRUCTURED:
        _emit_model(created, output)
        return
    say(created.id)
    if created.next_runs:
        say(f"next run: {_when(created.next_runs[0])}" + (" (paused)" if created.paused else ""), err=True)


def _timing(found: Any) -> str:
    parts = list(found.cron)
    if found.interval_seconds is not None:
        parts.append(f"every {found.interval_seconds:g}s")
    return "; ".join(parts) + ("" if found.timezone == "UTC" else f" ({found.timezone})")


@schedule.command("list")
@client_options
def schedule_list(server: str, output: str) -> None:
    """Every schedule (text: id, state, timing, next run, workflow name, tab-separated)."""
    with _client(server) as client:
        found = client.list_schedules()
    if output in STRUCTURED:
        emit([item.model_dump(mode="json") for item in found], output)
        return
    rows = [
        (
            item.id,
            "paused" if item.paused else "active",
            _timing(item),
            _when(item.next_runs[0]) if item.next_runs and not item.paused else "-",
            item.name,
        )
        for item in found
    ]
    if output == "table":
        from .node_tables import table

        say("\n".join(table(("ID", "STATE", "WHEN", "NEXT", "WORKFLOW"), rows)))
        return
    if not rows:
        say("no schedules", err=True)
    for row in rows:
        say("\t".join(row))


@schedule.command("show")
@click.argument("schedule_id", metavar="ID")
@client_options
def schedule_show(schedule_id: str, server: str, output: str) -> None:
    """A schedule: timing, overlap policy, state, inputs, next fire times and recent runs."""
    with _client(server) as client:
        found = client.get_schedule(schedule_id)
    if output in STRUCTURED:
        _emit_model(found, output)
        return
    lines = [
        f"{found.id}  ({found.name})",
        f"  when:     {_timing(found)}",
        f"  overlap:  {found.overlap}",
        f"  state:    {'paused' if found.paused else 'active'}" + (f" ({found.note})" if found.note else ""),
        f"  runs:     {found.runs_started if found.runs_started is not None else '-'} started",
    ]
    for key, value in (found.inputs or {}).items():
        lines.append(f"  input:    {key}={value}")
    lines += [f"  next:     {_when(moment)}" for moment in found.next_runs[:5]]
    lines += [f"  ran:      {run.id}  (scheduled {_when(run.scheduled_at)})" for run in found.recent_runs[-5:]]
    say("\n".join(lines))


def _action(name: str, verb: str, summary: str) -> None:
    @schedule.command(name, help=summary)
    @click.argument("schedule_id", metavar="ID")
    @client_options
    def command(schedule_id: str, server: str, output: str) -> None:
        with _client(server) as client:
            result = getattr(client, f"{name}_schedule")(schedule_id)
        if output in STRUCTURED:
            emit({"id": schedule_id} if result is None else result.model_dump(mode="json"), output)
        else:
            say(f"{verb} {schedule_id}")


_action("pause", "paused", "Pause schedule ID: it fires no more until unpaused.")
_action("unpause", "unpaused", "Unpause schedule ID: it fires again from its next matching time.")
_action("trigger", "triggered", "Run schedule ID now (its overlap policy applies); the run shows in `schedule show`.")
_action("delete", "deleted", "Delete schedule ID; the runs it started are not touched.")
