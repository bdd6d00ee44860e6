"""Load and chaos: 1,000 concurrent runs, randomized kill -9 trials, Temporal unreachable (ADR 0046).

One stack of real processes in a temp dir (Temporal dev server, one ``waterflow server``, three
agents of one group; ``waterflow_testing.chaos``):

1. **load**: ``--runs`` one-step runs submitted at once (20 submits in flight); every run must
   complete and every step run exactly once (each step appends ``start``/``end`` lines with its
   run id to a ledger file per agent). Reports the time to complete them all and runs/s.
2. **kill -9 trials**: ``--trials`` rounds of a mixed load (sequential steps, parallel jobs, a
   4-way fan-out, a failing step with a compensation, a flow/sleep; ``--mix`` runs of each) during
   which ``--faults`` random ``kill -9`` hit an agent, the server or Temporal (each restarted on
   the same data, name and port). Every run must end as designed (succeeded, or failed with its
   compensation done) and no completed step may run again, except one in flight at a kill of its
   agent or of Temporal (at-least-once). The baseline is the same mixed load without faults.
3. **outage**: Temporal SIGSTOPped (``--outage`` seconds), then SIGKILLed and restarted after as
   long, while runs are in flight: submits meanwhile must get 503 (never a hang, never a 500),
   and agents and server must finish the runs by reconnecting on their own.

Faults are drawn from ``--seed`` (printed; trial *i* uses ``seed + i``), so a failing schedule can
be replayed with ``--seed <seed + i> --trials 1`` (timing still varies: the stack is real).

Run: ``python bench/bench_chaos.py [--runs 1000] [--trials 20] [--outage 30] [--seed N] [--quick]
[--json PATH] [--strict]``. ``--quick``: 30 runs, 1 trial with 1 kill, a 5 s SIGSTOP outage only.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _report import Row, load_average, median, percentile, print_table, write_json

from waterflow_testing.chaos import (
    MIXED,
    ONE_STEP,
    ChaosStack,
    check_ledger,
    read_ledger,
    submit_all,
    temporal_outage,
    wait_all,
)


def fresh_ledger(stack: ChaosStack, name: str) -> Path:
    stack.ledger_dir = stack.root / f"ledger-{name}"
    stack.ledger_dir.mkdir()
    return stack.ledger_dir


async def load(stack: ChaosStack, runs: int) -> Row:
    ledger = fresh_ledger(stack, "load")
    plan = [(f"{stack.group}-load-{i}", ONE_STEP) for i in range(runs)]
    began, wall = time.monotonic(), time.time()
    outcome = await submit_all(stack.url, stack.group, ledger, plan, concurrency=20, timeout=1800)
    submitted = time.monotonic() - began
    await wait_all(stack.url, outcome, timeout=1800, concurrency=20)
    # The steps' own clock: the last step's end (polling 1000 runs' status afterwards takes a while).
    ends = [e.ended for runs in read_ledger(ledger).values() for e in runs if e.ended is not None]
    total = max(ends) - wall if ends else time.monotonic() - began
    ok = True
    try:
        counts = check_ledger(ledger, outcome, stack.disruptions)
    except AssertionError as err:
        print(f"load: {err}")
        ok, counts = False, {}
    print(f"load: {runs} runs submitted in {submitted:.1f}s, the last step ended after {total:.1f}s "
          f"({runs / total:.1f} runs/s); ledger {counts}; refused meanwhile {outcome.rejected}", flush=True)
    return Row(
        bench="chaos", metric=f"{runs} concurrent 1-step runs, 3 agents: last step done", unit="s", median=total,
        goal="every run completes, each step exactly once", met=ok, samples=runs,
        notes={"runs_per_s": runs / total, "submit_s": submitted, "refused": outcome.rejected,
               "p95_submit_s": percentile(outcome.submit_seconds, 95), **counts},
    )


async def mixed(
    stack: ChaosStack, name: str, per_kind: int, rng: random.Random, faults: int
) -> tuple[float, list[str], bool]:
    """One round of the mixed load with ``faults`` random kills; (seconds, the kills, correct?)."""
    ledger = fresh_ledger(stack, name)
    plan = [(f"{stack.group}-{name}-{i}-{kind.name}", kind) for i in range(per_kind) for kind in MIXED]
    rng.shuffle(plan)
    began = time.monotonic()
    submitting = asyncio.create_task(submit_all(stack.url, stack.group, ledger, plan, concurrency=5, timeout=900))
    done: list[str] = []
    for _ in range(faults):
        await asyncio.sleep(rng.uniform(0.5, 4))
        done.append(await asyncio.to_thread(stack.random_fault, rng))
    outcome = await submitting
    try:
        await wait_all(stack.url, outcome, timeout=900)
        check_ledger(ledger, outcome, stack.disruptions)
    except AssertionError as err:
        print(f"{name}: FAILED: {err}", flush=True)
        return time.monotonic() - began, done, False
    return time.monotonic() - began, done, True


async def trials(stack: ChaosStack, count: int, per_kind: int, faults: int, seed: int) -> list[Row]:
    baseline, _, base_ok = await mixed(stack, "baseline", per_kind, random.Random(seed), 0)
    print(f"baseline (no faults): {len(MIXED) * per_kind} runs in {baseline:.1f}s, correct={base_ok}", flush=True)
    seconds: list[float] = []
    failed: list[int] = []
    for trial in range(count):
        took, done, ok = await mixed(stack, f"trial{trial}", per_kind, random.Random(seed + trial), faults)
        seconds.append(took)
        if not ok:
            failed.append(seed + trial)
        verdict = "ok" if ok else "FAILED"
        print(f"trial {trial} seed {seed + trial}: {', '.join(done)}: {took:.1f}s {verdict}", flush=True)
    return [Row(
        bench="chaos", metric=f"mixed load under {faults} random kill -9 (per trial)", unit="s",
        median=median(seconds), p95=percentile(seconds, 95), baseline="same load, no faults",
        baseline_median=baseline, baseline_p95=baseline, goal="every run ends as designed; no completed step re-run",
        met=not failed and base_ok, samples=count,
        notes={"seed": seed, "failed_seeds": failed, "runs_per_trial": len(MIXED) * per_kind},
    )]


async def outage(stack: ChaosStack, seconds: float, *, kill: bool) -> Row:
    how = "SIGKILL + restart" if kill else "SIGSTOP"
    ledger = fresh_ledger(stack, f"outage-{'kill' if kill else 'stop'}")
    plan = [(f"{stack.group}-{'k' if kill else 's'}-outage-{i}-{kind.name}", kind) for i in range(2) for kind in MIXED]
    before = await submit_all(stack.url, stack.group, ledger, plan)
    report = await temporal_outage(stack, before, seconds, kill=kill)
    ok = (
        report.health == 503
        and all(status == 503 for status, _ in report.answers)
        and all(took < 60 for _, took in report.answers)
        and stack.server is not None and stack.server.returncode is None
        and all(agent.returncode is None for agent in stack.agents.values())
    )
    try:
        check_ledger(ledger, before, stack.disruptions)
    except AssertionError as err:
        print(f"outage ({how}): {err}")
        ok = False
    answers = [took for _, took in report.answers]
    print(f"outage {how} {seconds:.0f}s: health {report.health}, submits {report.answers}, "
          f"runs finished {report.recovery:.1f}s after Temporal was back", flush=True)
    return Row(
        bench="chaos", metric=f"Temporal unreachable {seconds:.0f}s ({how}): submit answered", unit="s",
        median=median(answers), p95=percentile(answers, 95), goal="503 at once, reconnect, runs finish", met=ok,
        samples=len(answers), notes={"answers": report.answers, "health": report.health, "recovery_s": report.recovery},
    )


async def bench(args: argparse.Namespace, stack: ChaosStack) -> list[Row]:
    rows = [await load(stack, args.runs)]
    rows += await trials(stack, args.trials, args.mix, args.faults, args.seed)
    rows.append(await outage(stack, args.outage, kill=False))
    if not args.quick:
        rows.append(await outage(stack, args.outage, kill=True))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="concurrent 1-step runs of the load (default 1000)")
    parser.add_argument("--trials", type=int, default=20, help="kill -9 trials (default 20)")
    parser.add_argument("--faults", type=int, default=2, help="random kills per trial (default 2)")
    parser.add_argument("--mix", type=int, default=3, help="runs of each mixed workflow per trial (default 3)")
    parser.add_argument("--outage", type=float, default=30, help="seconds Temporal is unreachable (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault schedule (default: random, printed)")
    parser.add_argument("--quick", action="store_true", help="30 runs, 1 trial with 1 kill, a 5 s SIGSTOP outage")
    parser.add_argument("--json", help="write the rows to this file (for run_all.py)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()
    # SIGTERM ends the bench like Ctrl-C does: through the finally that stops every process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.runs, args.trials, args.faults, args.outage, args.mix = 30, 1, 1, 5, 1
    if args.seed is None:
        args.seed = random.randrange(1 << 31)
    print(f"seed {args.seed} (replay trial i: --seed <seed + i> --trials 1)", flush=True)
    print(f"load average before: {load_average()} (1/5/15 min)", flush=True)
    root = Path(tempfile.mkdtemp(prefix="waterflow-bench-chaos-"))
    rows: list[Row] = []
    try:
        with ChaosStack(root) as stack:
            try:
                rows = asyncio.run(bench(args, stack))
            except AssertionError:
                traceback.print_exc()
                rows.append(Row(bench="chaos", metric="stack", unit="s", median=math.nan, goal="no failure", met=False))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load_after = load_average()
    print_table(rows, title=f"chaos (seed {args.seed})")
    print(f"load average after: {load_after} (1/5/15 min)")
    if args.json:
        write_json(args.json, "chaos", rows, quick=args.quick, seed=args.seed)
    missed = any(row.met is False for row in rows)
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
