"""``bench/run_all.py`` runs a benchmark for real and reports it: one table, one JSON file.

The reduced form of the cheapest benchmark (``--quick --only load``) runs as a subprocess, as
``hatch run bench-all`` does. Nothing here looks at timings: only that every row is there, in
the table and in the JSON, with its numbers and verdict.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]


def run_all(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / "run_all.py"), *args],
        capture_output=True, text=True, timeout=240, check=False, cwd=REPO,
    )  # fmt: skip


def test_run_all_quick_load_prints_one_table_and_writes_the_json(tmp_path: Path) -> None:
    out = tmp_path / "results" / "bench.json"
    result = run_all("--quick", "--only", "load", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr

    data = json.loads(out.read_text())
    assert data["quick"] is True
    assert set(data["benches"]) == {"load"}
    assert data["benches"]["load"]["exit_code"] == 0
    assert "failed" not in data["benches"]["load"]
    metrics = {row["metric"]: row for row in data["rows"]}
    cold = next(row for name, row in metrics.items() if "cold caches" in name)
    evaluate = metrics["compiled condition evaluate"]
    for row in (cold, evaluate):
        assert row["bench"] == "load"
        assert math.isfinite(row["median"]) and row["median"] > 0
        assert math.isfinite(row["p95"]) and row["p95"] >= row["median"]
        assert row["goal"] and isinstance(row["met"], bool)
    assert cold["baseline"] and cold["baseline_median"] > 0
    assert cold["ratio"] == pytest.approx(cold["median"] / cold["baseline_median"])

    combined = result.stdout.split("all benchmarks (--quick):", 1)[1]
    header = combined.splitlines()[1]
    for column in ("bench", "metric", "median", "p95", "baseline median", "ratio", "goal", "verdict"):
        assert column in header
    for metric in metrics:
        assert metric in combined
    assert f"written: {out}" in result.stdout


def test_an_unknown_benchmark_is_refused_by_name(tmp_path: Path) -> None:
    result = run_all("--quick", "--only", "no-such-bench", "--out", str(tmp_path / "x.json"))
    assert result.returncode == 2
    assert "no-such-bench" in result.stderr and "load" in result.stderr
    assert not (tmp_path / "x.json").exists()
