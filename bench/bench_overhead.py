"""Waterflow's wall-time overhead over a hand-written temporalio workflow, measured side by side.

Budget (docs/concepts/architecture.md, "Performance budget"): Waterflow adds ≤ 15 % wall time over a hand-written
temporalio workflow running the same activities on the same Temporal.

Everything runs on 127.0.0.1 in a temp dir: an embedded Temporal (``DevServer``, headless), one
real agent process (``python -m waterflow_agent``) serving one group, and in this process two
workers on their own task queues sharing one client (Waterflow's data converter):

* **waterflow**: the interpreter worker (``build_interpreter_worker``) running ``WaterflowRun``;
  runs are started with ``start_run`` (the workflow text is parsed once, before timing, as the
  server does at submit) and timed from ``start_run`` to ``handle.result()``.
* **raw**: :class:`RawJobs`, a plain ``@workflow.defn`` that runs the same jobs (concurrently)
  and their steps (in order) with ``workflow.execute_activity``: same activity type
  (``exec/shell``), same :class:`~waterflow_core.steptask.StepTask` inputs, same agent queue,
  activity ids, timeouts, retry policy and cancellation type as the interpreter uses. Timed from
  ``client.start_workflow`` to ``handle.result()``.

Both go through the same agent, so the difference is what the interpreter (and its bigger
inputs, history and result) costs. Workloads: ``seq`` (one job of 10 ``true`` shell steps) and
``fanout`` (3 parallel jobs × 5 steps). Each is run ``--runs`` times per side (default 5),
interleaved (raw/waterflow order alternates per round), after ``--warmup`` untimed rounds.

Run: ``python bench/bench_overhead.py [--runs N] [--seq-steps N] [--fanout-jobs N]
[--fanout-steps N] [--quick] [--json PATH] [--strict]``. Finishes in well under 3 minutes with
the defaults; exits 1 on a missed budget only with ``--strict``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

from waterflow_core.steptask import StepResult, StepTask

RAW_WORKFLOW_TYPE = "BenchRawJobs"
BUDGET_PCT = 15.0


class RawPlan(BaseModel):
    """Input of :class:`RawJobs`: which steps to run where, with which activity options."""

    queue: str
    node: str = "exec/shell"
    command: str = "true"
    jobs: dict[str, list[str]] = Field(default_factory=dict)
    """job id -> step ids, in order."""
    start_to_close: float
    heartbeat: float
    initial_interval: float
    backoff: float
    max_interval: float | None = None
    max_attempts: int
    non_retryable: list[str] = Field(default_factory=list)


@workflow.defn(name=RAW_WORKFLOW_TYPE)
class RawJobs:
    """The hand-written baseline: jobs concurrently, each job's steps in order, one activity each."""

    @workflow.run
    async def run(self, plan: RawPlan) -> list[str]:
        workflow_id = workflow.info().workflow_id
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=plan.initial_interval),
            backoff_coefficient=plan.backoff,
            maximum_interval=timedelta(seconds=plan.max_interval) if plan.max_interval else None,
            maximum_attempts=plan.max_attempts,
            non_retryable_error_types=plan.non_retryable,
        )

        async def job(job_id: str, step_ids: list[str]) -> list[str]:
            agents = []
            for sid in step_ids:
                task = StepTask(
                    workflow_id=workflow_id,
                    job=job_id,
                    step=sid,
                    name=sid,
                    node=plan.node,
                    with_={"command": plan.command},
                    env={},
                    contexts={},
                    status="success",
                )
                result: StepResult = await workflow.execute_activity(
                    plan.node,
                    task,
                    task_queue=plan.queue,
                    result_type=StepResult,
                    activity_id=task.step_path,
                    start_to_close_timeout=timedelta(seconds=plan.start_to_close),
                    heartbeat_timeout=timedelta(seconds=plan.heartbeat),
                    retry_policy=retry,
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    summary=sid,
                )
                agents.append(result.agent)
            return agents

        per_job = await asyncio.gather(*(job(j, steps) for j, steps in plan.jobs.items()))
        return [agent for agents in per_job for agent in agents]


# -- host side (nothing below runs inside a workflow) ------------------------------------------


def workflow_text(name: str, group: str, jobs: dict[str, list[str]], command: str) -> str:
    """The Waterflow equivalent of a :class:`RawPlan`: independent jobs of ``exec/shell`` steps."""
    out = [f"name: {name}", "jobs:"]
    for job_id, step_ids in jobs.items():
        out += [f"  {job_id}:", f"    runs-on: {group}", "    steps:"]
        for sid in step_ids:
            out += [f"      - id: {sid}", "        uses: exec/shell", f"        with: {{command: '{command}'}}"]
    return "\n".join(out) + "\n"


async def workflow_task_ms(handle: object) -> tuple[float, int]:
    """Time a closed run spent in workflow tasks (started -> completed, from its history) and their count.

    That is the worker's processing of each activation plus the round trip that reports it,
    without the time tasks waited to be dispatched: the interpreter's own cost, isolated.
    """
    from temporalio.api.enums.v1 import EventType

    total, count, started = 0.0, 0, None
    async for event in handle.fetch_history_events():  # type: ignore[attr-defined]
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started = event.event_time.ToDatetime()
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and started is not None:
            total += (event.event_time.ToDatetime() - started).total_seconds() * 1000
            count += 1
            started = None
    return total, count


def load_average() -> str:
    import os

    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


async def bench(args: argparse.Namespace) -> int:
    import sys
    import tempfile
    import time
    import uuid
    from pathlib import Path

    from temporalio.worker import Worker

    from waterflow_agent.command import agent_argv
    from waterflow_core.dsl import load_workflow
    from waterflow_core.dsl.models import Defaults
    from waterflow_core.interpreter import build_interpreter_worker, start_run
    from waterflow_core.interpreter.retry import activity_options
    from waterflow_core.runs import RunInput
    from waterflow_core.temporal import connect, sandboxed_runner
    from waterflow_testing.devserver import DevServer
    from waterflow_testing.processes import spawn_logged, stop_process, wait_for_log_line

    # The sandbox must import this module by a real name: re-import ourselves as `bench_overhead`.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_overhead as me
    from _report import Row, median, percentile, print_table, write_json

    a = args  # argparse.Namespace
    workloads = {
        "seq": {"main": [f"s{i}" for i in range(1, a.seq_steps + 1)]},
        "fanout": {f"j{j}": [f"s{i}" for i in range(1, a.fanout_steps + 1)] for j in range(1, a.fanout_jobs + 1)},
    }
    labels = {
        "seq": f"seq: 1 job × {a.seq_steps} steps",
        "fanout": f"fanout: {a.fanout_jobs} parallel jobs × {a.fanout_steps} steps",
    }
    group = f"bench-{uuid.uuid4().hex[:6]}"
    options = activity_options(timeout=None, heartbeat_timeout=None, retry=None, defaults=Defaults())
    policy = options.retry_policy

    def plan(jobs: dict[str, list[str]]) -> me.RawPlan:
        return me.RawPlan(
            queue=group,
            command=a.command,
            jobs=jobs,
            start_to_close=options.start_to_close.total_seconds(),
            heartbeat=options.heartbeat.total_seconds(),
            initial_interval=policy.initial_interval.total_seconds() if policy.initial_interval else 1.0,
            backoff=policy.backoff_coefficient,
            max_interval=policy.maximum_interval.total_seconds() if policy.maximum_interval else None,
            max_attempts=policy.maximum_attempts,
            non_retryable=list(policy.non_retryable_error_types or []),
        )

    plans = {name: plan(jobs) for name, jobs in workloads.items()}
    flows = {
        name: RunInput.plan(load_workflow(workflow_text(f"bench-{name}", group, jobs, a.command)))
        for name, jobs in workloads.items()
    }
    n_steps = {name: sum(len(s) for s in jobs.values()) for name, jobs in workloads.items()}

    print(f"load average before: {load_average()} (1/5/15 min)", flush=True)
    t_setup = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="waterflow-bench-") as tmp:
        tmpdir = Path(tmp)
        server = DevServer(tmpdir / "temporal", headless=True)
        await server.start()
        agent_proc = None
        try:
            client = await connect(server.address, server.namespace)
            agent_log = tmpdir / "agent.log"
            cmd = agent_argv(
                f"bench-agent-{uuid.uuid4().hex[:6]}",
                [group],
                temporal_address=server.address,
                namespace=server.namespace,
                workdir=tmpdir / "agent-work",
                args=["--log-level", "warning"],
            )
            agent_proc, _ = spawn_logged(cmd, agent_log, cwd=tmpdir)
            await asyncio.to_thread(wait_for_log_line, str(agent_log), r"\bready\b", agent_proc, 60.0)

            wf_queue = f"bench-wf-{uuid.uuid4().hex[:6]}"
            raw_queue = f"bench-raw-{uuid.uuid4().hex[:6]}"
            wf_worker = build_interpreter_worker(client, wf_queue)
            raw_worker = Worker(
                client,
                task_queue=raw_queue,
                workflows=[me.RawJobs],
                # Same sandbox as the interpreter, with this module passed through as
                # waterflow_core is (so neither re-imports its workflow module per run).
                workflow_runner=sandboxed_runner("bench_overhead"),
            )
            async with wf_worker, raw_worker:
                print(
                    f"setup: {time.perf_counter() - t_setup:.1f}s (Temporal {server.address}, agent ready)", flush=True
                )

                async def run_raw(name: str) -> tuple[float, float, int]:
                    start = time.perf_counter()
                    handle = await client.start_workflow(
                        RAW_WORKFLOW_TYPE,
                        plans[name],
                        id=f"bench-raw-{name}-{uuid.uuid4().hex[:10]}",
                        task_queue=raw_queue,
                        result_type=list[str],
                    )
                    agents = await asyncio.wait_for(handle.result(), a.run_timeout)
                    elapsed = time.perf_counter() - start
                    if len(agents) != n_steps[name]:
                        raise RuntimeError(f"raw {name}: {len(agents)} steps ran, expected {n_steps[name]}")
                    return (elapsed, *await workflow_task_ms(handle))

                async def run_wf(name: str) -> tuple[float, float, int]:
                    start = time.perf_counter()
                    handle = await start_run(
                        client, flows[name], workflow_id=f"bench-wf-{name}-{uuid.uuid4().hex[:10]}", task_queue=wf_queue
                    )
                    progress = await asyncio.wait_for(handle.result(), a.run_timeout)
                    elapsed = time.perf_counter() - start
                    done = sum(1 for j in progress.jobs for s in j.steps if s.status == "success")
                    if progress.status != "succeeded" or done != n_steps[name]:
                        raise RuntimeError(
                            f"waterflow {name}: {progress.status}, {done}/{n_steps[name]} steps succeeded"
                        )
                    return (elapsed, *await workflow_task_ms(handle))

                samples: dict[str, dict[str, list[float]]] = {n: {"raw": [], "wf": []} for n in workloads}
                wft: dict[str, dict[str, list[tuple[float, int]]]] = {n: {"raw": [], "wf": []} for n in workloads}
                t_bench = time.perf_counter()
                for round_no in range(-a.warmup, a.runs):
                    for name in workloads:
                        order = [("raw", run_raw), ("wf", run_wf)]
                        if round_no % 2:
                            order.reverse()
                        for side, fn in order:
                            elapsed, task_ms, tasks = await fn(name)
                            if round_no >= 0:
                                samples[name][side].append(elapsed)
                                wft[name][side].append((task_ms, tasks))
                    if round_no >= 0 and a.verbose:
                        print(
                            f"round {round_no + 1}: "
                            + ", ".join(
                                f"{n} raw {s['raw'][-1] * 1000:.0f}ms wf {s['wf'][-1] * 1000:.0f}ms"
                                for n, s in samples.items()
                            ),
                            flush=True,
                        )
                bench_seconds = time.perf_counter() - t_bench
        finally:
            if agent_proc is not None:
                await stop_process(agent_proc, 15.0)
            await server.stop()

    print()
    print(
        f"median wall time per run, start -> result; {a.runs} runs per side, interleaved, "
        f"after {a.warmup} warm-up round(s); one agent, command '{a.command}'"
    )
    header = (
        f"{'workload':<34} {'raw':>9} {'waterflow':>10} {'overhead':>9} {'per step':>9} {'paired':>8}"
        f"  budget ≤ {BUDGET_PCT:.0f} %"
    )
    print(header)
    print("-" * len(header))
    all_ok = True
    for name in workloads:
        raw, wf = samples[name]["raw"], samples[name]["wf"]
        raw_med, wf_med = statistics.median(raw), statistics.median(wf)
        overhead = (wf_med - raw_med) / raw_med * 100
        per_step_ms = (wf_med - raw_med) * 1000 / n_steps[name]
        paired = statistics.median((w - r) / r * 100 for r, w in zip(raw, wf, strict=True))
        ok = overhead <= BUDGET_PCT
        all_ok &= ok
        print(
            f"{labels[name]:<34} {raw_med * 1000:>7.0f}ms {wf_med * 1000:>8.0f}ms {overhead:>+8.1f}% "
            f"{per_step_ms:>+7.1f}ms {paired:>+7.1f}%  {'met' if ok else 'MISSED'}"
        )
        if a.verbose:
            print(f"    raw ms: {[round(x * 1000) for x in raw]}  waterflow ms: {[round(x * 1000) for x in wf]}")
    print("-" * len(header))
    print("overhead = (waterflow median - raw median) / raw median; per step = that difference / steps;")
    print("paired = median over rounds of each round's own overhead (less sensitive to load drift).")
    print()
    print("time in workflow tasks per run (history: task started -> completed; median), i.e. the")
    print("workflow code's own cost without dispatch waits:")
    header2 = f"{'workload':<34} {'raw':>9} {'waterflow':>10} {'diff':>9} {'tasks':>11} {'per task':>9}"
    print(header2)
    print("-" * len(header2))
    for name in workloads:
        raw_t = statistics.median(t for t, _ in wft[name]["raw"])
        wf_t = statistics.median(t for t, _ in wft[name]["wf"])
        raw_n = statistics.median(n for _, n in wft[name]["raw"])
        wf_n = statistics.median(n for _, n in wft[name]["wf"])
        print(
            f"{labels[name]:<34} {raw_t:>7.0f}ms {wf_t:>8.0f}ms {wf_t - raw_t:>+7.0f}ms {raw_n:>4.0f} / {wf_n:<4.0f} "
            f"{(wf_t / wf_n) - (raw_t / raw_n):>+7.1f}ms"
        )
    print("-" * len(header2))
    print(f"timed part: {bench_seconds:.1f}s; load average after: {load_average()} (1/5/15 min)")
    print(f"budget Waterflow overhead ≤ {BUDGET_PCT:.0f} %: {'met' if all_ok else 'MISSED'}")
    rows = [
        Row(
            bench="overhead",
            metric=f"{labels[name]}: wall per run",
            unit="ms",
            median=median(samples[name]["wf"]) * 1000,
            p95=percentile(samples[name]["wf"], 95) * 1000,
            baseline="hand-written temporalio workflow, same agent",
            baseline_median=median(samples[name]["raw"]) * 1000,
            baseline_p95=percentile(samples[name]["raw"], 95) * 1000,
            goal=f"≤ {1 + BUDGET_PCT / 100:.2f}x",
            met=median(samples[name]["wf"]) <= median(samples[name]["raw"]) * (1 + BUDGET_PCT / 100),
            samples=len(samples[name]["wf"]),
        )
        for name in workloads
    ]
    print()
    print_table(rows)
    if a.json:
        write_json(a.json, "overhead", rows, quick=a.quick)
    return 1 if (a.strict and not all_ok) else 0


def main() -> None:
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per workload and side (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--seq-steps", type=int, default=10, help="steps of the sequential job (default 10)")
    parser.add_argument("--fanout-jobs", type=int, default=3, help="parallel jobs of the fan-out (default 3)")
    parser.add_argument("--fanout-steps", type=int, default=5, help="steps per fan-out job (default 5)")
    parser.add_argument("--command", default="true", help="shell command of every step (default 'true')")
    parser.add_argument("--run-timeout", type=float, default=120.0, help="give up on a run after this many seconds")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every round and every sample")
    parser.add_argument("--quick", action="store_true", help="reduced form (< 60 s): 2 runs, seq 5, fan-out 2 × 3")
    parser.add_argument("--json", metavar="PATH", help="write the rows as JSON (for bench/run_all.py)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the budget is missed")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.seq_steps, args.fanout_jobs, args.fanout_steps = 2, 5, 2, 3
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
