"""Rolling batches and their failure budget (``strategy.batch``, ``max-fail-percentage``; ADR 0036).

Pure functions, so the workflow and the documentation's worked examples share one definition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def batch_sizes(entries: Sequence[int | str] | None, total: int) -> list[int]:
    """How many instances each batch starts, in order, for a job of ``total`` instances.

    Ansible's ``serial`` rules: an entry is a count or ``N%`` of ``total`` rounded down, at least
    1; the last entry repeats until every instance has a batch; the last batch takes what is left.
    Without entries the job is one batch.
    """
    if total <= 0:
        return []
    if not entries:
        return [total]
    sizes: list[int] = []
    left = total
    index = 0
    while left > 0:
        entry = entries[min(index, len(entries) - 1)]
        size = _size(entry, total)
        sizes.append(min(size, left))
        left -= sizes[-1]
        index += 1
    return sizes


def _size(entry: int | str, total: int) -> int:
    if isinstance(entry, str) and entry.endswith("%"):
        return max(1, math.floor(float(entry[:-1]) * total / 100))
    return max(1, int(entry))


def budget_exceeded(failed: int, started: int, max_fail_percentage: float | None) -> bool:
    """Whether ``failed`` of the ``started`` instances is *more* than the budget allows.

    Reaching the percentage exactly is within budget (2 failed of 10 at 20 %); no budget
    (``None``) is never exceeded.
    """
    if max_fail_percentage is None or started <= 0:
        return False
    # Integers on both sides: 100 * failed > pct * started without float rounding at the edge.
    return failed * 100 > max_fail_percentage * started
