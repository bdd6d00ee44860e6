"""Secret masking: every resolved secret value becomes ``***`` wherever it could leak.

Outputs, log lines, heartbeat details, error messages: whatever leaves the agent passes through a
:class:`SecretMasker` built from the secrets the step resolved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, cast

MASK = "***"
# Each line of a multi-line secret (a PEM key) is masked on its own too, because tools print
# them line by line; lines this short would mask ordinary text, so they are left alone.
_MIN_LINE = 4

T = TypeVar("T")


class SecretMasker:
    """Replaces known secret values with ``***``."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        needles: set[str] = set()
        for value in values:
            if not value:
                continue
            needles.add(value)
            if "\n" in value:
                needles.update(line.strip() for line in value.splitlines() if len(line.strip()) >= _MIN_LINE)
        # Longest first, so a secret that contains another one is masked whole.
        ordered = sorted(needles, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        """``text`` with every secret replaced."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def value(self, value: T) -> T:
        """A copy of a JSON-like value (dicts, lists, strings) with every string masked."""
        if self._pattern is None:
            return value
        return cast(T, self._walk(value))

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self._walk(k): self._walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._walk(v) for v in value)
        return value
