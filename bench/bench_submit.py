"""Submit latency of ``POST /v1/workflows``, beside a raw temporalio ``start_workflow``.

Budget (docs/concepts/architecture.md, "Performance budget"): submit P95 ≤ 1.3x a raw
``start_workflow`` in the same run.

Everything runs on 127.0.0.1 in a temp dir: an embedded Temporal (``DevServer``, headless) and
a real ``waterflow server`` process (``python -m waterflow_server``, which also hosts the
interpreter worker, as in production). A small workflow (one input, one job of two
``exec/shell`` steps with expressions) runs on a group no agent serves, so every run just waits
for its first step; all runs are terminated at the end.

Measured from this process at each ``--concurrency`` level (default ``1,10``): at level N, each
round fires N requests of one row at once (N concurrent clients) and times each; rows are
interleaved round by round, the order rotating (so load from other processes hits every row
alike), after ``--warmup`` untimed rounds. At level 1 all the rows below run; at higher levels
the raw start and the submit:

* ``raw start_workflow``: ``client.start_workflow("WaterflowRun", RunInput)`` with the input
  prepared beforehand: the floor (one gRPC round trip to Temporal), on the same task queue.
* ``start_run (in-process)``: ``waterflow_core.interpreter.start_run`` with the workflow parsed
  beforehand (adds input typing, the dump of the model, memo and summary).
* ``POST /v1/validate``: HTTP + parse + validation, no Temporal call.
* ``POST /v1/workflows``: the real submit (HTTP + parse + validation + ``start_run``); its P95 is
  what the budget is about.

HTTP uses one keep-alive ``httpx.AsyncClient`` (a connection per concurrent request) with the
JSON envelope, as the SDK does; the raw starts share one Temporal client, as the server's do.

Run: ``python bench/bench_submit.py [--requests N] [--concurrency 1,10] [--quick] [--json PATH] [--strict]``
(default 200 samples per row and level; a few minutes; ``--quick``: 40 samples, 3 warm-up rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from _report import Row, cpu_seconds, load_average, median, percentile, print_table, write_json

BUDGET_P95_RATIO = 1.3
RAW = "raw client.start_workflow"
SUBMIT = "POST /v1/workflows"

WORKFLOW = """\
name: bench-submit
description: A small workflow submitted by bench_submit.py (its group has no agent).
inputs:
  who: {type: string, default: world}
jobs:
  greet:
    runs-on: {group}
    steps:
      - id: say
        name: Say hello to $<< inputs.who >>
        uses: exec/shell
        timeout: 5m
        with:
          command: echo "greeting=hello, $<< inputs.who >>" >> "$WATERFLOW_OUTPUT"
      - id: show
        uses: exec/shell
        with:
          command: echo "$<< steps.say.outputs.greeting >>"
    outputs:
      greeting: $<< steps.say.outputs.greeting >>
"""


async def wait_healthy(http: object, process: object, log_file: Path, timeout: float) -> None:
    import httpx

    from waterflow_testing.processes import read_log

    assert isinstance(http, httpx.AsyncClient)
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = await http.get("/healthz", timeout=3)
            if response.status_code == 200 and response.json().get("status") == "ok":
                return
        except (httpx.HTTPError, ValueError):
            pass
        if process.poll() is not None:  # type: ignore[attr-defined]
            raise RuntimeError(f"waterflow server exited early:\n{read_log(log_file)[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"waterflow server not healthy within {timeout:.0f}s:\n{read_log(log_file)[-3000:]}")
        await asyncio.sleep(0.1)


async def terminate_all(client: object, ids: list[str]) -> None:
    from temporalio.client import Client

    assert isinstance(client, Client)
    gate = asyncio.Semaphore(16)

    async def one(run_id: str) -> None:
        async with gate:
            with contextlib.suppress(Exception):  # already closed is fine
                await client.get_workflow_handle(run_id).terminate("bench_submit cleanup")

    await asyncio.gather(*(one(i) for i in ids))


async def bench(a: argparse.Namespace) -> int:
    import httpx

    from waterflow_core.dsl import load_workflow
    from waterflow_core.interpreter import start_run
    from waterflow_core.runs import SERVER_TASK_QUEUE, WORKFLOW_TYPE, RunInput, RunProgress
    from waterflow_core.temporal import connect
    from waterflow_testing.devserver import DevServer
    from waterflow_testing.processes import free_port, spawn_logged, stop_process

    group = f"bench-nobody-{uuid.uuid4().hex[:6]}"
    text = WORKFLOW.replace("{group}", group)
    workflow = load_workflow(text)
    run_input = RunInput.plan(workflow, {"who": "world"}, source=text)
    body = {"workflow": text}

    print(f"load average before: {load_average()} (1/5/15 min)", flush=True)
    t_setup = time.perf_counter()
    started: list[str] = []
    results: dict[int, tuple[dict[str, list[float]], dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="waterflow-bench-") as tmp:
        tmpdir = Path(tmp)
        server = DevServer(tmpdir / "temporal", headless=True)
        await server.start()
        api = None
        client = None
        try:
            client = await connect(server.address, server.namespace)
            port = free_port()
            api_log = tmpdir / "server.log"
            command = [
                sys.executable, "-m", "waterflow_server", "--host", "127.0.0.1", "--port", str(port),
                "--temporal-address", server.address, "--namespace", server.namespace,
                *(["--no-worker"] if a.no_worker else []),
            ]  # fmt: skip
            api, _ = spawn_logged(command, api_log, cwd=tmpdir)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                await wait_healthy(http, api, api_log, 60.0)
                print(
                    f"setup: {time.perf_counter() - t_setup:.1f}s (Temporal {server.address}, server :{port})",
                    flush=True,
                )

                async def raw_start() -> None:
                    run_id = f"bench-raw-{uuid.uuid4().hex[:12]}"
                    started.append(run_id)
                    await client.start_workflow(
                        WORKFLOW_TYPE, run_input, id=run_id, task_queue=SERVER_TASK_QUEUE, result_type=RunProgress
                    )

                async def in_process() -> None:
                    run_id = f"bench-start-run-{uuid.uuid4().hex[:12]}"
                    started.append(run_id)
                    # Planned here, as the server plans each submission (inputs typed, workflow dumped).
                    run = RunInput.plan(workflow, {"who": "world"}, source=text)
                    await start_run(client, run, workflow_id=run_id)

                async def floor() -> None:
                    response = await http.get("/v1/no-such-path")
                    if response.status_code != 404:
                        raise RuntimeError(f"unknown path answered {response.status_code}")

                async def validate() -> None:
                    response = await http.post("/v1/validate", json=body)
                    if response.status_code != 200:
                        raise RuntimeError(f"validate answered {response.status_code}: {response.text}")

                async def submit() -> None:
                    response = await http.post("/v1/workflows", json=body)
                    if response.status_code != 201:
                        raise RuntimeError(f"submit answered {response.status_code}: {response.text}")
                    started.append(response.json()["id"])

                every: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                    (RAW, raw_start),
                    ("start_run (in-process)", in_process),
                    ("GET unknown path (HTTP floor, 404)", floor),
                    ("POST /v1/validate (no Temporal)", validate),
                    (SUBMIT, submit),
                ]
                pids = {"waterflow server": api.pid, "temporal": server.pid, "this process": None}
                t_bench = time.perf_counter()
                for level in a.concurrency:
                    rows = every if level == 1 else [r for r in every if r[0] in (RAW, SUBMIT)]
                    rounds = math.ceil(a.requests / level)
                    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                    samples = await measure(rows, level, rounds, a.warmup, a.pause)
                    cpu = {
                        name: round((after - before) * 1000 / (rounds + a.warmup), 1)
                        for name, pid in pids.items()
                        if (before := cpu_before[name]) is not None and (after := cpu_seconds(pid)) is not None
                    }
                    results[level] = (samples, cpu)
                bench_seconds = time.perf_counter() - t_bench
                load_after = load_average()
        finally:
            if started and client is not None:
                t_clean = time.perf_counter()
                await terminate_all(client, started)
                print(f"terminated {len(started)} runs in {time.perf_counter() - t_clean:.1f}s", flush=True)
            if api is not None:
                await stop_process(api, 15.0)
            await server.stop()

    report = build_rows(results, a)
    print()
    mode = "with" if not a.no_worker else "without"
    print(f"latency per request; server {mode} its interpreter worker; {a.warmup} warm-up round(s) per level")
    for level, (samples, cpu) in results.items():
        print(f"\n{level} concurrent client(s):")
        header = f"{'measurement':<34} {'n':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'mean':>8} {'max':>8}"
        print(header)
        print("-" * len(header))
        for label, s in samples.items():
            print(
                f"{label:<34} {len(s):>5} {percentile(s, 50):>6.1f}ms {percentile(s, 95):>6.1f}ms "
                f"{percentile(s, 99):>6.1f}ms {statistics.fmean(s):>6.1f}ms {max(s):>6.1f}ms"
            )
        if cpu:
            print("CPU per round: " + ", ".join(f"{name} {used:.1f} ms" for name, used in cpu.items()))
    print()
    print_table(report)
    print(f"timed part: {bench_seconds:.1f}s; load average after: {load_after} (1/5/15 min)")
    if a.json:
        write_json(a.json, "submit", report, quick=a.quick, worker=not a.no_worker)
    missed = [row.metric for row in report if row.met is False]
    print(f"budget submit P95 ≤ {BUDGET_P95_RATIO}x raw start_workflow P95: {'MISSED' if missed else 'met'}")
    return 1 if missed and a.strict else 0


async def measure(
    rows: list[tuple[str, Callable[[], Awaitable[None]]]], level: int, rounds: int, warmup: int, pause: float
) -> dict[str, list[float]]:
    """Per row, the latency of each request: ``level`` requests at once per round, rows interleaved."""
    samples: dict[str, list[float]] = {label: [] for label, _ in rows}

    async def timed(fn: Callable[[], Awaitable[None]]) -> float:
        start = time.perf_counter()
        await fn()
        return (time.perf_counter() - start) * 1000

    for i in range(-warmup, rounds):
        # Rotate the order so no row always runs right after the same other one.
        shift = i % len(rows)
        for label, fn in rows[shift:] + rows[:shift]:
            elapsed = await asyncio.gather(*(timed(fn) for _ in range(level)))
            if i >= 0:
                samples[label].extend(elapsed)
        if pause:
            await asyncio.sleep(pause)
    return samples


def build_rows(results: dict[int, tuple[dict[str, list[float]], dict[str, float]]], a: argparse.Namespace) -> list[Row]:
    rows = []
    for level, (samples, cpu) in results.items():
        raw = samples[RAW]
        clients = f"{level} client{'s' if level > 1 else ''}"
        for label, s in samples.items():
            if label == RAW:
                continue
            is_submit = label == SUBMIT
            ratio = percentile(s, 95) / percentile(raw, 95)
            rows.append(
                Row(
                    "submit", f"{label}, {clients}", "ms", median(s), percentile(s, 95),
                    baseline=f"raw client.start_workflow, {clients}", baseline_median=median(raw),
                    baseline_p95=percentile(raw, 95), ratio_of="p95",
                    goal=f"P95 ≤ {BUDGET_P95_RATIO}x raw" if is_submit else None,
                    met=ratio <= BUDGET_P95_RATIO if is_submit else None, samples=len(s),
                    notes={"cpu_ms_per_round": cpu} if is_submit else {},
                )
            )  # fmt: skip
    return rows


def concurrency_levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",") if part.strip()]
    if not levels or any(level < 1 for level in levels):
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers, e.g. 1,10")
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per row and level (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed rounds first (default 10)")
    parser.add_argument(
        "--concurrency", type=concurrency_levels, default=[1, 10], help="concurrent clients, e.g. 1,10 (default)"
    )
    parser.add_argument("--quick", action="store_true", help="40 requests per row and level, 3 warm-up rounds")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON (bench/run_all.py)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the budget is missed")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="run the server with --no-worker (the started runs are then never processed)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.0,
        help="seconds to wait after each round (default 0: back to back), so the server's worker "
        "has finished the previous runs' first workflow tasks before the next request",
    )
    args = parser.parse_args()
    if args.quick:
        args.requests, args.warmup = min(args.requests, 40), min(args.warmup, 3)
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
