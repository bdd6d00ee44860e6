"""Per-step cost of Waterflow (a real agent running ``exec/shell`` ``true``) vs in-process no-op activities.

Goal (issue 12): a step through Waterflow costs ≤ 1.5x a no-op activity on the same Temporal.

Everything runs on 127.0.0.1 in a temp dir: an embedded Temporal (``DevServer``, headless), real
agent processes (``python -P -m waterflow_agent``), and in this process

* the interpreter worker (``build_interpreter_worker``) running ``WaterflowRun``: runs are
  started with ``start_run`` (the YAML parsed beforehand, as the server does at submit);
* the baseline: :class:`NoopJobs`, a hand-written ``@workflow.defn`` (same sandbox as the
  interpreter) whose jobs run concurrently, each job's steps in order, one
  ``execute_activity`` of the in-process no-op activity ``bench.noop`` per step. The activity
  worker polls its own task queue, as an agent does, so each step takes the same Temporal hops
  (no eager dispatch; the ``eager`` row shows what eager dispatch would give).

Workloads (each timed start → result, per step = wall / steps):

* ``seq N``: one job of N sequential steps (N = 1, 10, 50): how cost grows with steps;
* ``jobs J×S``: J parallel jobs of S steps: how it grows with jobs;
* ``each-server N``: one ``strategy.each-server`` job of one step over N agents (baseline: N
  parallel one-step jobs): how it grows with fan-out width;
* ``history L``: one job of L steps; the per-step cost of its last 20 steps (from the history's
  ``ActivityTaskScheduled`` times) vs its first 20: how it grows with history length.

Rounds alternate the order (baseline first, then Waterflow first) after an untimed warm-up.
The hop breakdown (history event times: activity scheduled → started → completed, workflow
task scheduled → started → completed) of the ``seq 10`` runs is printed below the table.

Run: ``python bench/bench_steps.py [--runs N] [--quick] [--json PATH] [--strict]``.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import activity, workflow

NOOP_ACTIVITY = "bench.noop"
BASELINE_WORKFLOW = "BenchStepsNoop"
GOAL_RATIO = 1.5
BASELINE = "no-op activity in-process, own task queue"
HISTORY_WINDOW = 20


class NoopPlan(BaseModel):
    """Input of :class:`NoopJobs`: job id -> number of steps, and the activity queue."""

    queue: str
    jobs: dict[str, int] = Field(default_factory=dict)


@activity.defn(name=NOOP_ACTIVITY)
async def noop() -> None:
    """The baseline step: nothing."""


@workflow.defn(name=BASELINE_WORKFLOW)
class NoopJobs:
    """The baseline: jobs concurrently, each job's steps in order, one no-op activity each."""

    @workflow.run
    async def run(self, plan: NoopPlan) -> int:
        async def job(steps: int) -> int:
            for _ in range(steps):
                await workflow.execute_activity(
                    NOOP_ACTIVITY, task_queue=plan.queue, start_to_close_timeout=timedelta(hours=1)
                )
            return steps

        return sum(await asyncio.gather(*(job(n) for n in plan.jobs.values())))


# -- host side (nothing below runs inside a workflow) ------------------------------------------


def workflow_text(name: str, group: str, jobs: dict[str, int], *, each_server: bool = False) -> str:
    """The Waterflow run of a workload: independent jobs of ``exec/shell`` ``true`` steps."""
    out = [f"name: {name}", "jobs:"]
    for job_id, steps in jobs.items():
        out += [f"  {job_id}:", f"    runs-on: {group}"]
        if each_server:
            out += ["    strategy: {each-server: true}"]
        out += ["    steps:"]
        for i in range(1, steps + 1):
            out += [f"      - id: s{i}", "        uses: exec/shell", "        with: {command: 'true'}"]
    return "\n".join(out) + "\n"


class Workload(BaseModel):
    """One row of the table: a Waterflow run and its baseline plan."""

    key: str
    label: str
    jobs: dict[str, int]
    steps: int
    """Steps a run executes (each-server: one per agent)."""
    group: str
    each_server: bool = False
    baseline_jobs: dict[str, int]
    history: bool = False


async def history_times(handle: object) -> dict[str, list[float]]:
    """Per-hop durations (ms) and activity scheduled times (s) from a closed run's history."""
    from temporalio.api.enums.v1 import EventType as E

    out: dict[str, list[float]] = {
        "activity scheduled→started": [],
        "activity started→completed": [],
        "activity completed→next scheduled": [],
        "workflow task scheduled→started": [],
        "workflow task started→completed": [],
        "scheduled_at": [],
    }
    at: dict[str, float] = {}
    async for event in handle.fetch_history_events():  # type: ignore[attr-defined]
        t = event.event_time.ToDatetime().timestamp()
        kind = event.event_type
        if kind == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            out["scheduled_at"].append(t)
            if "ac" in at:
                out["activity completed→next scheduled"].append((t - at.pop("ac")) * 1000)
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            out["activity scheduled→started"].append((t - out["scheduled_at"][-1]) * 1000)
            at["as"] = t
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and "as" in at:
            out["activity started→completed"].append((t - at.pop("as")) * 1000)
            at["ac"] = t
        elif kind == E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            at["ws"] = t
        elif kind == E.EVENT_TYPE_WORKFLOW_TASK_STARTED and "ws" in at:
            out["workflow task scheduled→started"].append((t - at.pop("ws")) * 1000)
            at["wst"] = t
        elif kind == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and "wst" in at:
            out["workflow task started→completed"].append((t - at.pop("wst")) * 1000)
    return out


def window_ms(scheduled_at: list[float], first: bool) -> float:
    """Per-step cost (ms) over the first or last ``HISTORY_WINDOW`` steps, from scheduled times."""
    times = scheduled_at[: HISTORY_WINDOW + 1] if first else scheduled_at[-(HISTORY_WINDOW + 1) :]
    return (times[-1] - times[0]) * 1000 / (len(times) - 1)


def workloads(args: argparse.Namespace, group: str, fan_group: str) -> list[Workload]:
    found = []
    for n in args.seq:
        found.append(
            Workload(key=f"seq{n}", label=f"seq {n}: 1 job × {n} steps", jobs={"main": n}, steps=n, group=group,
                     baseline_jobs={"main": n})
        )  # fmt: skip
    jobs, steps = args.jobs, args.job_steps
    if jobs > 1:
        plan = {f"j{j}": steps for j in range(1, jobs + 1)}
        found.append(
            Workload(key="jobs", label=f"jobs {jobs}×{steps}: parallel jobs", jobs=plan, steps=jobs * steps,
                     group=group, baseline_jobs=plan)
        )  # fmt: skip
    if args.fanout_agents > 1:
        n = args.fanout_agents
        found.append(
            Workload(key="fanout", label=f"each-server over {n} agents × 1 step", jobs={"fan": 1}, steps=n,
                     group=fan_group, each_server=True, baseline_jobs={f"j{i}": 1 for i in range(n)})
        )  # fmt: skip
    if args.history_steps >= 2 * HISTORY_WINDOW:
        n = args.history_steps
        found.append(
            Workload(key="history", label=f"history {n}: last {HISTORY_WINDOW} steps", jobs={"main": n}, steps=n,
                     group=group, baseline_jobs={"main": n}, history=True)
        )  # fmt: skip
    return found


async def bench(args: argparse.Namespace) -> int:
    import subprocess
    import sys
    import tempfile
    import time
    import uuid
    from pathlib import Path

    from temporalio.worker import Worker

    from waterflow_agent.command import agent_argv
    from waterflow_core.dsl import load_workflow
    from waterflow_core.interpreter import build_interpreter_worker, start_run
    from waterflow_core.runs import RunInput
    from waterflow_core.temporal import connect, sandboxed_runner
    from waterflow_testing.devserver import DevServer
    from waterflow_testing.processes import spawn_logged, stop_process, wait_for_log_line

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_steps as me
    from _report import Row, load_average, median, percentile, print_table, write_json

    suffix = uuid.uuid4().hex[:6]
    group, fan_group = f"steps-{suffix}", f"fan-{suffix}"
    loads = me.workloads(args, group, fan_group)
    flows = {
        w.key: RunInput.plan(
            load_workflow(me.workflow_text(f"bench-{w.key}", w.group, w.jobs, each_server=w.each_server))
        )
        for w in loads
    }

    print(f"load average before: {load_average()} (1/5/15 min)", flush=True)
    t_setup = time.perf_counter()
    agents: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="waterflow-bench-steps-") as tmp:
        tmpdir = Path(tmp)
        server = DevServer(tmpdir / "temporal", headless=True)
        await server.start()
        try:
            client = await connect(server.address, server.namespace)
            n_agents = max(1, args.fanout_agents)
            for i in range(n_agents):
                log_file = tmpdir / f"agent{i}.log"
                groups = [group, fan_group] if i == 0 else [fan_group]
                cmd = agent_argv(
                    f"bench-steps-{i}-{suffix}",
                    groups if args.fanout_agents > 1 else [group],
                    temporal_address=server.address,
                    namespace=server.namespace,
                    workdir=tmpdir / f"agent{i}-work",
                    args=["--log-level", "warning"],
                )
                proc, _ = spawn_logged(cmd, log_file, cwd=tmpdir)
                agents.append(proc)
                await asyncio.to_thread(wait_for_log_line, str(log_file), r"\bready\b", proc, 60.0)

            wf_queue, noop_queue = f"bench-wf-{suffix}", f"bench-noop-{suffix}"
            wf_worker = build_interpreter_worker(client, wf_queue)
            base_worker = Worker(
                client,
                task_queue=f"bench-base-{suffix}",
                workflows=[me.NoopJobs],
                workflow_runner=sandboxed_runner("bench_steps"),
            )
            noop_worker = Worker(client, task_queue=noop_queue, activities=[me.noop], max_concurrent_activities=100)
            eager_worker = Worker(
                client,
                task_queue=f"bench-eager-{suffix}",
                workflows=[me.NoopJobs],
                activities=[me.noop],
                workflow_runner=sandboxed_runner("bench_steps"),
            )
            async with wf_worker, base_worker, noop_worker, eager_worker:
                print(f"setup: {time.perf_counter() - t_setup:.1f}s (Temporal {server.address}, "
                      f"{n_agents} agent(s) ready)", flush=True)  # fmt: skip

                async def run_base(w: Workload, eager: bool = False) -> tuple[float, object]:
                    queue = f"bench-eager-{suffix}" if eager else f"bench-base-{suffix}"
                    plan = me.NoopPlan(queue=queue if eager else noop_queue, jobs=w.baseline_jobs)
                    start = time.perf_counter()
                    # Eager workflow start, as start_run asks for (ADR 0048): only the steps differ.
                    handle = await client.start_workflow(
                        BASELINE_WORKFLOW, plan, id=f"bench-base-{w.key}-{uuid.uuid4().hex[:10]}",
                        task_queue=queue, result_type=int, request_eager_start=True,
                    )  # fmt: skip
                    done = await asyncio.wait_for(handle.result(), args.run_timeout)
                    elapsed = time.perf_counter() - start
                    if done != sum(w.baseline_jobs.values()):
                        raise RuntimeError(f"baseline {w.key}: {done} steps ran")
                    return elapsed, handle

                async def run_wf(w: Workload) -> tuple[float, object]:
                    start = time.perf_counter()
                    handle = await start_run(
                        client,
                        flows[w.key],
                        workflow_id=f"bench-wf-{w.key}-{uuid.uuid4().hex[:10]}",
                        task_queue=wf_queue,
                    )
                    progress = await asyncio.wait_for(handle.result(), args.run_timeout)
                    elapsed = time.perf_counter() - start
                    done = sum(1 for j in progress.jobs for s in j.steps if s.status == "success")
                    if progress.status != "succeeded" or done != w.steps:
                        raise RuntimeError(f"waterflow {w.key}: {progress.status}, {done}/{w.steps} steps succeeded")
                    return elapsed, handle

                per_step: dict[str, dict[str, list[float]]] = {
                    w.key: {"wf": [], "base": [], "eager": []} for w in loads
                }
                hops: dict[str, dict[str, list[float]]] = {"wf": {}, "base": {}}
                first: dict[str, list[float]] = {"wf": [], "base": []}
                t_bench = time.perf_counter()
                for round_no in range(-args.warmup, args.runs):
                    for w in loads:
                        if w.history and round_no < 0:
                            continue  # long: no warm-up
                        if w.history and round_no >= args.history_runs:
                            continue
                        order = ["base", "wf"] if round_no % 2 == 0 else ["wf", "base"]
                        if w.key == "seq10":
                            order.append("eager")
                        for side in order:
                            if side == "wf":
                                elapsed, handle = await run_wf(w)
                            else:
                                elapsed, handle = await run_base(w, eager=side == "eager")
                            if round_no < 0:
                                continue
                            if w.history:
                                times = await me.history_times(handle)
                                per_step[w.key][side].append(me.window_ms(times["scheduled_at"], first=False))
                                first[side].append(me.window_ms(times["scheduled_at"], first=True))
                                continue
                            per_step[w.key][side].append(elapsed * 1000 / w.steps)
                            if w.key == "seq10" and side != "eager":
                                times = await me.history_times(handle)
                                for name, values in times.items():
                                    if name != "scheduled_at":
                                        hops[side].setdefault(name, []).extend(values)
                    if round_no >= 0 and args.verbose:
                        print(f"round {round_no + 1}: " + ", ".join(
                            f"{k} wf {v['wf'][-1]:.0f} base {v['base'][-1]:.0f}" for k, v in per_step.items() if v["wf"]
                        ), flush=True)  # fmt: skip
                bench_seconds = time.perf_counter() - t_bench
        finally:
            for proc in agents:
                await stop_process(proc, 15.0)
            await server.stop()

    rows: list[Row] = []
    for w in loads:
        wf, base = per_step[w.key]["wf"], per_step[w.key]["base"]
        row = Row(
            bench="steps",
            metric=f"{w.label}: per step",
            unit="ms",
            median=median(wf),
            p95=percentile(wf, 95),
            baseline=BASELINE,
            baseline_median=median(base),
            baseline_p95=percentile(base, 95),
            goal=f"≤ {GOAL_RATIO}x",
            samples=len(wf),
        )
        row.met = row.ratio is not None and row.ratio <= GOAL_RATIO
        if w.history:
            row.notes = {"first_window_ms": {"wf": median(first["wf"]), "base": median(first["base"])}}
        rows.append(row)
        if w.key == "seq10" and per_step[w.key]["eager"]:
            eager = per_step[w.key]["eager"]
            rows.append(
                Row(bench="steps", metric="seq 10: no-op, eager dispatch (info)", unit="ms", median=median(eager),
                    p95=percentile(eager, 95), baseline=BASELINE,
                    baseline_median=median(base), baseline_p95=percentile(base, 95), samples=len(eager))
            )  # fmt: skip
    if first["wf"]:
        n = args.history_steps
        rows.append(
            Row(
                bench="steps",
                metric=f"history {n}: Waterflow last {HISTORY_WINDOW} vs first {HISTORY_WINDOW} (info)",
                unit="ms",
                median=median(per_step["history"]["wf"]),
                baseline=f"first {HISTORY_WINDOW} steps, same runs",
                baseline_median=median(first["wf"]),
                samples=len(first["wf"]),
            )
        )
    print()
    print_table(rows, title=f"per-step cost, {args.runs} runs per side (history: {args.history_runs}), interleaved")
    hop_names = [name for name in hops["wf"] if hops["wf"][name]]
    if hop_names:
        print()
        print("seq 10 hop breakdown from the history (median ms per hop; count per run):")
        print(f"  {'hop':<36} {'waterflow':>10} {'baseline':>10}")
        for name in hop_names:
            print(f"  {name:<36} {median(hops['wf'][name]):>10.1f} {median(hops['base'].get(name, [])):>10.1f}")
    print(f"timed part: {bench_seconds:.1f}s; load average after: {load_average()} (1/5/15 min)")
    missed = [r.metric for r in rows if r.met is False]
    print(f"goal per step ≤ {GOAL_RATIO}x no-op: {'met' if not missed else 'MISSED (' + '; '.join(missed) + ')'}")
    if args.json:
        hop_medians = {side: {k: median(v) for k, v in h.items()} for side, h in hops.items()}
        write_json(args.json, "steps", rows, hops_seq10=hop_medians, quick=args.quick)
    return 1 if (missed and args.strict) else 0


def main() -> None:
    import sys

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per workload and side (default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--seq", type=int, nargs="+", default=[1, 10, 50], help="sequential sizes (default 1 10 50)")
    parser.add_argument("--jobs", type=int, default=4, help="parallel jobs (default 4; 0 skips)")
    parser.add_argument("--job-steps", type=int, default=5, help="steps per parallel job (default 5)")
    parser.add_argument("--fanout-agents", type=int, default=3, help="each-server width (default 3; 0 skips)")
    parser.add_argument("--history-steps", type=int, default=200, help="steps of the long run (default 200; 0 skips)")
    parser.add_argument("--history-runs", type=int, default=2, help="long runs per side (default 2)")
    parser.add_argument("--run-timeout", type=float, default=300.0, help="give up on a run after this many seconds")
    parser.add_argument("--quick", action="store_true", help="reduced form (< 60 s): seq 1 and 10, 3 runs, no long run")
    parser.add_argument("--json", metavar="PATH", help="write the rows as JSON (for bench/run_all.py)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every round")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.seq, args.jobs, args.fanout_agents, args.history_steps = 3, [1, 10], 2, 0, 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
