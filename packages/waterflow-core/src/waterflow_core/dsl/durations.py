"""Durations as users write them: ``500ms``, ``30s``, ``5m``, ``1h30m``, ``2d`` or plain seconds."""

from __future__ import annotations

import math
import re
from functools import lru_cache

from ._messages import quote

# ASCII digits only: `\d` would also take e.g. Arabic-Indic digits, which float() reads.
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_CACHED_LENGTH = 32  # only short texts are cached: a hostile 1 MB "duration" must not stay in memory
# A year is far beyond any sane step or run timeout; larger values are typos.
MAX_DURATION_SECONDS = 366 * 86400.0


def parse_duration(value: object) -> float:
    """Return the duration in seconds; raise ``ValueError`` with a user-facing message."""
    if isinstance(value, str) and len(value) <= _CACHED_LENGTH:
        return _parse_text(value)
    return _parse(value)


@lru_cache(maxsize=1024)
def _parse_text(value: str) -> float:
    # Workflows repeat the same few durations; the cache keeps validation of big files cheap.
    return _parse(value)


def _parse(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h30m")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int too big for a float
            seconds = math.inf
    elif isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        else:
            pos = 0
            seconds = 0.0
            units: list[str] = []
            # Anchored at each part: finditer would retry at every digit, quadratic on a long run.
            while (match := _PART.match(text, pos)) is not None:
                units.append(match.group(2))
                seconds += float(match.group(1)) * _SECONDS[match.group(2)]
                pos = match.end()
            if not units or pos != len(text) or len(set(units)) != len(units):
                raise ValueError(f"invalid duration {quote(value)}: use e.g. 500ms, 30s, 5m, 1h30m or seconds")
    else:
        raise ValueError("expected a duration such as 30s, 5m or 1h30m")
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"duration {quote(value)} must be greater than zero")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"duration {quote(value)} is longer than 366 days")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest text that :func:`parse_duration` reads back as ``seconds``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out = ""
    rest = seconds
    for unit in ("d", "h", "m"):
        size = _SECONDS[unit]
        if rest >= size:
            count = int(rest // size)
            out += f"{count}{unit}"
            rest -= count * size
    if rest or not out:
        out += f"{rest:g}s"
    return out
