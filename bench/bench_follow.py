"""How soon the follow stream delivers a running step's line: issue 10's "within 2 s".

Budget: a line a running step prints reaches a ``GET /v1/workflows/{id}/logs?follow=true``
reader within 2 s (P95), which is what ``waterflow logs -f`` and ``--watch`` show.

Everything runs on 127.0.0.1 in a temp dir: ``waterflow dev`` (embedded Temporal, the API
server with its interpreter worker, one local agent) as a child process. Each run's one step
prints ``--lines`` lines ``--gap`` seconds apart, each carrying the wall-clock time it was
printed (``date +%s.%N``, same machine, same clock); the benchmark follows the run with the SDK
(``Client.log_entries(follow=True)``) and takes, per line, arrival time minus print time.

What the delay is made of: the agent sends a running step's recent lines with its heartbeats,
which the Temporal SDK throttles (the agent sets ``max_heartbeat_throttle_interval`` to 2 s),
and the server looks at the run every ``follow_poll_seconds`` (0.5 s by default) for new
heartbeat details. The rows split the lines by where they fall: a step's first line (the step's
first heartbeat went out when it started, with no lines yet, so this one waits out the whole
throttle interval), and the later ones.

Run: ``python bench/bench_follow.py [--runs N] [--lines N] [--gap S] [--quick] [--json PATH] [--strict]``
(default 5 runs of 8 lines 0.7 s apart; about a minute with start-up; ``--quick``: 2 runs of 4 lines).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import Row, load_average, median, percentile, print_table, write_json

BUDGET_P95_SECONDS = 2.0

WORKFLOW = """\
name: bench-follow
jobs:
  talk:
    runs-on: local
    steps:
      - id: lines
        uses: exec/shell
        with:
          command: |
            for i in $(seq 1 {lines}); do
              echo "line $i printed-at $(date +%s.%N)"
              sleep {gap}
            done
"""

PRINTED = re.compile(r"^line (\d+) printed-at (\d+\.\d+)$")


def start_dev(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    from waterflow_testing.devserver import free_port

    port = free_port()
    log = tmp / "dev.log"
    command = [
        sys.executable, "-m", "waterflow_sdk", "dev", "--data-dir", str(tmp / "data"),
        "--port", str(port), "--temporal-port", str(free_port()), "--ui-port", str(free_port()),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("WATERFLOW_TEMPORAL_ADDRESS", None)
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 180
    while not re.search(r"^ready\b", log.read_text(errors="replace"), re.M):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"waterflow dev did not get ready:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return process, f"http://127.0.0.1:{port}"


def follow_one(url: str, text: str) -> list[tuple[int, float]]:
    """``(line number, seconds from print to arrival)`` for each line of one run."""
    from waterflow_sdk import Client

    found: list[tuple[int, float]] = []
    with Client(url) as client:
        ref = client.submit(text)
        for entry in client.log_entries(ref.id, follow=True):
            match = PRINTED.match(entry.line) if entry.kind == "log" else None
            if match:
                found.append((int(match.group(1)), time.time() - float(match.group(2))))
        run = client.get(ref.id)
    if run.status != "succeeded":
        raise RuntimeError(f"run {ref.id} {run.status}: {run.error}")
    return found


def row(label: str, samples: list[float]) -> str:
    if not samples:
        return f"{label:<30} {'-':>6}"
    within = sum(1 for s in samples if s <= BUDGET_P95_SECONDS) / len(samples) * 100
    return (
        f"{label:<30} {len(samples):>6} {percentile(samples, 50):>7.2f}s {percentile(samples, 95):>7.2f}s "
        f"{max(samples):>7.2f}s {statistics.fmean(samples):>7.2f}s {within:>8.0f}%"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lines", type=int, default=8)
    parser.add_argument("--gap", type=float, default=0.7)
    parser.add_argument("--quick", action="store_true", help="2 runs of 4 lines")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON (bench/run_all.py)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the budget is missed")
    a = parser.parse_args()
    if a.quick:
        a.runs, a.lines = min(a.runs, 2), min(a.lines, 4)
    text = WORKFLOW.format(lines=a.lines, gap=a.gap)
    print(f"load average before: {load_average()} (1/5/15 min)", flush=True)
    first: list[float] = []
    later: list[float] = []
    with tempfile.TemporaryDirectory(prefix="waterflow-bench-follow-") as tmp:
        t_setup = time.perf_counter()
        dev, url = start_dev(Path(tmp))
        try:
            print(f"setup: {time.perf_counter() - t_setup:.1f}s (waterflow dev at {url})", flush=True)
            follow_one(url, text)  # warm-up: the agent's first step, imports, connections
            for _ in range(a.runs):
                for number, latency in follow_one(url, text):
                    (first if number == 1 else later).append(latency)
        finally:
            dev.send_signal(signal.SIGINT)
            try:
                dev.wait(90)
            except subprocess.TimeoutExpired:
                dev.kill()
                dev.wait()
    print()
    print(f"print -> follow-stream arrival, {a.runs} runs of {a.lines} lines {a.gap:g}s apart (after 1 warm-up run)")
    header = f"{'lines':<30} {'count':>6} {'p50':>8} {'p95':>8} {'max':>8} {'mean':>8} {'<= 2 s':>9}"
    print(header)
    print("-" * len(header))
    print(row("a step's first line", first))
    print(row("its later lines", later))
    print(row("all lines", first + later))
    print("-" * len(header))
    print(f"load average after: {load_average()} (1/5/15 min)")
    expected = a.runs * a.lines
    every = first + later
    complete = len(every) == expected
    if not complete:
        print(f"lines missing: {expected - len(every)} of {expected} never arrived")
    p95 = percentile(every, 95)
    met = complete and p95 <= BUDGET_P95_SECONDS
    rows = [
        Row("follow", "print → logs --follow, a step's first line", "s", median(first), percentile(first, 95),
            samples=len(first)),
        Row("follow", "print → logs --follow, its later lines", "s", median(later), percentile(later, 95),
            samples=len(later)),
        Row("follow", "print → logs --follow, all lines", "s", median(every), p95, ratio_of="p95",
            goal=f"≤ {BUDGET_P95_SECONDS:g} s P95, no line lost", met=met, samples=len(every),
            notes={"expected_lines": expected}),
    ]  # fmt: skip
    print_table(rows)
    print(f"budget P95 <= {BUDGET_P95_SECONDS:g}s: {'met' if met else 'MISSED'} (P95 {p95:.2f}s)")
    if a.json:
        write_json(a.json, "follow", rows, quick=a.quick)
    return 1 if not complete or (a.strict and not met) else 0


if __name__ == "__main__":
    sys.exit(main())
