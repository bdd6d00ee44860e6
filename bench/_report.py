"""The result format every benchmark shares: rows of median/P95 beside a baseline from the same run.

Each ``bench/bench_*.py`` builds :class:`Row` objects, prints them with :func:`print_table` and,
when given ``--json PATH``, writes them with :func:`write_json`; ``bench/run_all.py`` runs the
scripts, reads those files back and prints one table for all of them.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Better = Literal["lower", "higher"]


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the convention all the scripts here use)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else math.nan


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds a process (this one if ``pid`` is ``None``) has used so far
    (Linux ``/proc``; ``None`` elsewhere or once it is gone)."""
    try:
        path = f"/proc/{pid}/stat" if pid else "/proc/self/stat"
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def load_average() -> str:
    """The 1/5/15-minute load average, printed before and after each run (shared machine)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


@dataclass
class Row:
    """One measurement beside its baseline.

    ``ratio`` is measured/baseline of the statistic named by ``ratio_of`` (``p95`` or ``median``);
    ``goal`` is the budget as text (``"≤ 1.5x"``, ``"≤ 15 ms"``, ``"≥ 80 %"``) and ``met`` whether this
    run met it (``None`` when the row is informational).
    """

    bench: str
    metric: str
    unit: str
    median: float
    p95: float | None = None
    baseline: str | None = None
    baseline_median: float | None = None
    baseline_p95: float | None = None
    ratio_of: Literal["median", "p95"] = "median"
    better: Better = "lower"
    goal: str | None = None
    met: bool | None = None
    samples: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        mine = self.p95 if self.ratio_of == "p95" else self.median
        base = self.baseline_p95 if self.ratio_of == "p95" else self.baseline_median
        if mine is None or base is None or base == 0:
            return None
        return mine / base

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def _fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f} {unit}"
    return f"{value:.3g} {unit}" if abs(value) < 1 else f"{value:.1f} {unit}"


def print_table(rows: Sequence[Row], title: str | None = None) -> None:
    """Print the rows as one aligned table: measured, baseline, ratio, goal, verdict."""
    if title:
        print(title)
    header = ("bench", "metric", "median", "p95", "baseline median", "baseline p95", "ratio", "goal", "verdict")
    table = [header]
    for row in rows:
        ratio = row.ratio
        verdict = "-" if row.met is None else ("met" if row.met else "MISSED")
        table.append(
            (
                row.bench,
                row.metric,
                _fmt(row.median, row.unit),
                _fmt(row.p95, row.unit),
                _fmt(row.baseline_median, row.unit) if row.baseline else "-",
                _fmt(row.baseline_p95, row.unit) if row.baseline else "-",
                f"{ratio:.2f}x ({row.ratio_of})" if ratio is not None else "-",
                row.goal or "-",
                verdict,
            )
        )
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    for index, line in enumerate(table):
        print("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
    baselines = sorted({f"{row.metric}: {row.baseline}" for row in rows if row.baseline})
    if baselines:
        print("baselines (measured in the same run): " + "; ".join(baselines))


def write_json(path: str | os.PathLike[str], bench: str, rows: Sequence[Row], **extra: Any) -> None:
    """Write ``{"bench", "load_average", "rows": [...], **extra}`` for ``run_all.py``."""
    payload = {"bench": bench, "load_average": load_average(), "rows": [row.as_json() for row in rows], **extra}
    Path(path).write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")


def read_rows(path: str | os.PathLike[str]) -> list[Row]:
    """Rows written by :func:`write_json` (``ratio`` is derived, so it is dropped on the way in)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = []
    for item in data["rows"]:
        item.pop("ratio", None)
        rows.append(Row(**item))
    return rows
