"""click parameter types shared by every ``waterflow`` subcommand (client, server, dev, agent)."""

from __future__ import annotations

from datetime import timedelta

import click

from waterflow_core.dsl.durations import parse_duration

__all__ = ["Duration"]


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


def _spell(duration: timedelta) -> str:
    """``1h`` rather than ``1:00:00``: the way the option is written."""
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
