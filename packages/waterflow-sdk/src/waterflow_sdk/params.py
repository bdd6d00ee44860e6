"""click parameter types shared by every ``waterflow`` subcommand (client, server, dev, agent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from waterflow_core.dsl.durations import parse_duration

__all__ = ["Duration", "Moment"]


class Duration(click.ParamType):
    """A DSL duration (``500ms``, ``30s``, ``5m``, ``1h30m``, ``30d`` or a number of seconds).

    ``minimum`` rejects shorter values with a message naming the option.
    """

    name = "duration"

    def __init__(self, minimum: timedelta | None = None) -> None:
        self.minimum = minimum

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            duration = value
        else:
            try:
                duration = timedelta(seconds=parse_duration(str(value)))
            except (ValueError, TypeError) as exc:
                self.fail(f"{value!r} is not a duration like 30s, 5m, 12h or 30d ({exc})", param, ctx)
        if self.minimum is not None and duration < self.minimum:
            self.fail(f"must be at least {_spell(self.minimum)}", param, ctx)
        return duration


class Moment(click.ParamType):
    """A point in time: an ISO 8601 timestamp or date (UTC without an offset), or a duration
    (``2h``, ``7d``) meaning that long ago. Converts to an aware UTC ``datetime``."""

    name = "time"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            try:
                return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
            except (ValueError, TypeError, OverflowError):
                self.fail(
                    f"{text!r} is neither a time (2026-11-30, 2026-11-30T08:00:00Z) nor a duration ago (2h, 7d)",
                    param,
                    ctx,
                )
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _spell(duration: timedelta) -> str:
    """``1h`` rather than ``1:00:00``: the way the option is written."""
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
