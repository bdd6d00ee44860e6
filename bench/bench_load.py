"""Parse + validate a generated 1000-line workflow, beside a plain C YAML parse of the same text.

Also times the evaluation of a typical compiled condition. Run: ``hatch run bench`` or
``python bench/bench_load.py [--quick] [--json PATH] [--strict]``. Budget
(docs/concepts/architecture.md): load+validate ≤ 15 ms median, a compiled condition ≤ 10 µs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from _report import Row, load_average, median, percentile, print_table, write_json
from workflow_gen import generate_workflow

from waterflow_core.dsl import load_workflow
from waterflow_core.expressions import compile_expression, compiler, template

LOAD_BUDGET_MS = 15.0
EVAL_BUDGET_US = 10.0


def load_cold(text: str) -> None:
    """Load with empty expression caches: what the first submit of a new workflow costs."""
    compiler._compile_cached.cache_clear()
    template._parse_cached.cache_clear()
    load_workflow(text)


def samples_ms(fn: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = clock()
        fn()
        samples.append((clock() - start) * 1000)
    return samples


def eval_samples_us(
    fn: Callable[[], object], batches: int, per_batch: int, clock: Callable[[], float] = time.perf_counter
) -> list[float]:
    """Mean time per call of each batch: one call is too short to time on its own."""
    samples = []
    for _ in range(batches):
        start = clock()
        for _ in range(per_batch):
            fn()
        samples.append((clock() - start) / per_batch * 1e6)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="10 repetitions (a few seconds)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON (bench/run_all.py)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument("--strictyaml", action="store_true", help="also time strictyaml (slow)")
    args = parser.parse_args()
    repeat = 10 if args.quick else args.repeat
    print(f"load average before: {load_average()} (1/5/15 min)", flush=True)

    text = generate_workflow(args.lines)
    lines = text.count("\n")
    load_workflow(text)  # import Lark and build the parser once, as a running server has

    c_yaml = samples_ms(lambda: yaml.load(text, Loader=yaml.CSafeLoader), repeat)
    cold = samples_ms(lambda: load_cold(text), repeat)
    warm = samples_ms(lambda: load_workflow(text), repeat)
    # This process's CPU time: what the load costs without the waits a busy shared machine adds.
    cold_cpu = samples_ms(lambda: load_cold(text), repeat, time.process_time)
    baseline = "yaml.CSafeLoader parse of the same text"
    rows = [
        Row(
            "load", f"load_workflow {lines} lines, new text (cold caches)", "ms", median(cold), percentile(cold, 95),
            baseline=baseline, baseline_median=median(c_yaml), baseline_p95=percentile(c_yaml, 95),
            goal=f"≤ {LOAD_BUDGET_MS:g} ms median", met=median(cold) <= LOAD_BUDGET_MS, samples=repeat,
        ),
        Row(
            "load", f"load_workflow {lines} lines, same text again", "ms", median(warm), percentile(warm, 95),
            baseline=baseline, baseline_median=median(c_yaml), baseline_p95=percentile(c_yaml, 95), samples=repeat,
        ),
        Row(
            "load", f"load_workflow {lines} lines, new text, CPU time", "ms", median(cold_cpu),
            percentile(cold_cpu, 95), samples=repeat,
        ),
    ]  # fmt: skip
    if args.strictyaml:
        import strictyaml

        slow = samples_ms(lambda: strictyaml.dirty_load(text, allow_flow_style=True), 3)
        rows.append(Row("load", "strictyaml.dirty_load (for comparison)", "ms", median(slow), percentile(slow, 95)))

    condition = compile_expression("success() && steps.build.outputs.result == 'ok' && inputs.replicas > 1")
    contexts = {"steps": {"build": {"outputs": {"result": "ok"}}}, "inputs": {"replicas": 3}}
    batches, per_batch = (10, 2_000) if args.quick else (20, 5_000)
    evals = eval_samples_us(lambda: condition.evaluate(contexts), batches, per_batch)
    rows.append(
        Row(
            "load", "compiled condition evaluate", "µs", median(evals), percentile(evals, 95),
            goal=f"≤ {EVAL_BUDGET_US:g} µs median", met=median(evals) <= EVAL_BUDGET_US, samples=batches,
            notes={"calls_per_sample": per_batch},
        )
    )  # fmt: skip
    evals_cpu = eval_samples_us(lambda: condition.evaluate(contexts), batches, per_batch, time.process_time)
    rows.append(
        Row("load", "compiled condition evaluate, CPU time", "µs", median(evals_cpu), percentile(evals_cpu, 95),
            samples=batches, notes={"calls_per_sample": per_batch})
    )  # fmt: skip

    print(f"workflow: {lines} lines, {len(text)} bytes; {repeat} repetitions")
    print_table(rows)
    print(f"load average after: {load_average()} (1/5/15 min)")
    if args.json:
        write_json(args.json, "load", rows, quick=args.quick)
    missed = [row.metric for row in rows if row.met is False]
    print(f"budget load ≤ 15 ms, condition ≤ 10 µs: {'MISSED: ' + ', '.join(missed) if missed else 'met'}")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
