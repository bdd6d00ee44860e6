"""Parse + validate a generated 1000-line workflow, beside a plain C YAML parse of the same text.

Also times the evaluation of a typical compiled condition. Run: ``hatch run bench`` or
``python bench/bench_load.py``. Budget (docs/concepts/architecture.md): load+validate ≤ 15 ms median, a compiled
condition ≤ 10 µs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from workflow_gen import generate_workflow

from waterflow_core.dsl import load_workflow
from waterflow_core.expressions import compile_expression, compiler, template


def load_cold(text: str) -> None:
    """Load with empty expression caches: what the first submit of a new workflow costs."""
    compiler._compile_cached.cache_clear()
    template._parse_cached.cache_clear()
    load_workflow(text)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--strictyaml", action="store_true", help="also time strictyaml (slow)")
    args = parser.parse_args()

    text = generate_workflow(args.lines)
    lines = text.count("\n")
    load_workflow(text)  # import Lark and build the parser once, as a running server has

    rows = [
        ("C YAML parse (yaml.CSafeLoader)", median_ms(lambda: yaml.load(text, Loader=yaml.CSafeLoader), args.repeat)),
        ("waterflow load_workflow, new text (cold caches)", median_ms(lambda: load_cold(text), args.repeat)),
        ("waterflow load_workflow, same text again", median_ms(lambda: load_workflow(text), args.repeat)),
    ]
    if args.strictyaml:
        import strictyaml

        rows.append(("strictyaml.dirty_load", median_ms(lambda: strictyaml.dirty_load(text, allow_flow_style=True), 3)))

    condition = compile_expression("success() && steps.build.outputs.result == 'ok' && inputs.replicas > 1")
    contexts = {"steps": {"build": {"outputs": {"result": "ok"}}}, "inputs": {"replicas": 3}}
    n = 100_000
    start = time.perf_counter()
    for _ in range(n):
        condition.evaluate(contexts)
    eval_us = (time.perf_counter() - start) / n * 1e6

    print(f"workflow: {lines} lines, {len(text)} bytes; median of {args.repeat} runs")
    print(f"{'measurement':<50} {'median':>10}")
    print("-" * 61)
    for label, value in rows:
        print(f"{label:<50} {value:>8.2f}ms")
    print(f"{'compiled condition evaluate':<50} {eval_us:>8.2f}µs")
    print("-" * 61)
    ok_load = rows[1][1] <= 15.0
    ok_eval = eval_us <= 10.0
    print(f"budget load ≤ 15 ms: {'met' if ok_load else 'MISSED'}; condition ≤ 10 µs: {'met' if ok_eval else 'MISSED'}")


if __name__ == "__main__":
    main()
