"""Run every benchmark (``bench/bench_*.py``), print one table for all of them, write the rows as JSON.

Each script runs as its own subprocess (in its own process group, killed on Ctrl-C or error) with
``--json PATH``; the rows it writes are read back, printed as one table and written to ``--out``
(default ``bench/results/latest.json``) with each script's exit code and load average.

Run: ``hatch run bench-all [--quick] [--only NAME ...] [--out PATH] [--strict]``, where NAME is
a script's name without ``bench_`` and ``.py`` (``load``, ``submit``, ...). Exits 1 when a script
failed (crashed, timed out, wrote no rows) and, with ``--strict``, when a goal was missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _report import Row, load_average, print_table, read_rows

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "results" / "latest.json"


def available() -> list[str]:
    """The benchmark names, from the scripts present (a new ``bench_<name>.py`` is picked up)."""
    return sorted(path.stem.removeprefix("bench_") for path in BENCH_DIR.glob("bench_*.py"))


def run_one(name: str, json_path: Path, quick: bool, timeout: float) -> tuple[int | None, float]:
    """Run one script to completion; ``(exit code or None when it timed out, seconds)``."""
    command = [sys.executable, str(BENCH_DIR / f"bench_{name}.py"), "--json", str(json_path)]
    if quick:
        command.append("--quick")
    print(f"\n=== bench_{name}.py{' --quick' if quick else ''} ===", flush=True)
    started = time.perf_counter()
    # Its own session, so the whole group (Temporal, servers, agents it spawned) can be ended.
    process = subprocess.Popen(
        command,
        cwd=BENCH_DIR.parent,
        start_new_session=True,
        preexec_fn=default_sigint,  # noqa: PLW1509 - run_all starts no threads
    )
    code: int | None = None
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"bench_{name}.py did not finish within {timeout:g} s: stopped", flush=True)
    finally:
        # Also on Ctrl-C and for what a finished script left behind in its group.
        stop_group(process)
    return code, time.perf_counter() - started


def default_sigint() -> None:
    """In the child before exec: Ctrl-C semantics even when run_all runs where SIGINT is ignored
    (a background job), so the SIGINT of :func:`stop_group` reaches the script's cleanup."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        return
    for sig, grace in ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            # The script is gone; what it left in its group (a dev server's children) goes too.
            os.killpg(process.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def main() -> int:
    names = available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="each script's reduced form (< 1 min each)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=names, help=f"run only these: {', '.join(names)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"combined JSON (default {DEFAULT_OUT})")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--timeout", type=float, help="seconds per script (default 300 with --quick, else 3600)")
    args = parser.parse_args()
    selected = args.only or names
    # A SIGTERM (or SIGINT where it is not ignored) unwinds through run_one's finally, which stops
    # the running script's process group; Python's default SIGTERM would leave it running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    timeout = args.timeout or (300.0 if args.quick else 3600.0)

    load_before = load_average()
    print(f"load average before: {load_before} (1/5/15 min); running {', '.join(selected)}", flush=True)
    rows: list[Row] = []
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="waterflow-bench-all-") as tmp:
        for name in selected:
            json_path = Path(tmp) / f"{name}.json"
            code, seconds = run_one(name, json_path, args.quick, timeout)
            result: dict[str, Any] = {"exit_code": code, "seconds": round(seconds, 1)}
            if json_path.is_file():
                data = json.loads(json_path.read_text(encoding="utf-8"))
                script_rows = read_rows(json_path)
                rows.extend(script_rows)
                result.update(load_average=data.get("load_average"), rows=[row.as_json() for row in script_rows])
            if code is None or code not in (0, 1) or not result.get("rows"):
                result["failed"] = True
            results[name] = result
    load_after = load_average()

    print()
    print_table(rows, title=f"all benchmarks{' (--quick)' if args.quick else ''}:")
    failed = sorted(name for name, result in results.items() if result.get("failed"))
    missed = [f"{row.bench}: {row.metric}" for row in rows if row.met is False]
    print(f"load average before: {load_before}, after: {load_after} (1/5/15 min)")
    if failed:
        print(f"FAILED (crashed, timed out or wrote no rows): {', '.join(failed)}")
    print(f"goals missed: {'; '.join(missed) if missed else 'none'}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "quick": args.quick,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "benches": results,
        "rows": [row.as_json() for row in rows],
    }
    args.out.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"written: {args.out}")
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
