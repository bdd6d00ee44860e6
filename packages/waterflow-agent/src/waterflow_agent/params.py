"""click parameter types of the agent's own options."""

from __future__ import annotations

import re

import click

_SIZE_RE = re.compile(r"\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*", re.IGNORECASE)
_UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


class ByteSize(click.ParamType):
    """A number of bytes: ``65536``, ``64KiB``, ``1MiB``, ``2GiB`` (binary units, case-insensitive)."""

    name = "size"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _SIZE_RE.fullmatch(str(value))
        if match is None:
            self.fail(f"{value!r} is not a size like 65536, 512KiB, 1MiB or 1GiB", param, ctx)
        return int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]
