"""Throughput of 1-step runs submitted through REST, beside raw temporalio client + worker.

Budget (issue 12): Waterflow completes ≥ 80 % of the runs per second a raw client + worker does
on the same Temporal.

Everything runs on 127.0.0.1 in a temp dir: an embedded Temporal (``DevServer``, headless), a
real ``waterflow server`` process (with its interpreter worker, as deployed) and one real agent
process (``--max-concurrent`` 10, the default) serving one group. Two sides:

* **waterflow**: ``POST /v1/workflows`` of a one-step workflow (``exec/shell`` running ``true``
  on the agent's group); each run is awaited to its end and must have succeeded.
* **raw**: ``client.start_workflow`` of :class:`RawOneStep`, a hand-written workflow with one
  activity that runs ``true`` as a subprocess, on an in-process worker (this process, the same
  Temporal, at most 10 activities at once like the agent, the sandbox the interpreter uses).
  It gets both of Temporal's eager paths: the workflow start (``request_eager_start``, as the
  server's ``start_run`` asks for) and the activity (same process and queue), which a step
  running on an agent cannot have.

A batch is ``--runs`` runs started by ``--clients`` concurrent clients (each starts its next run
when the previous one is accepted); its throughput is runs / (last run finished − first
started). The sides alternate batch by batch for ``--rounds`` rounds after one untimed warm-up
batch each; the verdict compares the medians.

To show where the time goes, each timed batch also records the CPU seconds (utime + stime from
``/proc/<pid>/stat``) the server, the agent, Temporal and this process spent, printed per run
and per side, and the end prints the history of one run of each side (events, workflow tasks,
payload bytes of the input and of the workflow tasks' commands).

Run: ``python bench/bench_throughput.py [--runs N] [--rounds N] [--clients N] [--quick] [--json PATH]
[--strict]`` (default 100 runs × 3 rounds per side, a few minutes; ``--quick``: 20 runs, 1 round).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from _report import Row, cpu_seconds, load_average, median, percentile, print_table, write_json
from temporalio import activity, workflow

BUDGET_PCT = 80.0
MAX_CONCURRENT = 10  # the agent's default --max-concurrent, also given to the raw worker
RAW_WORKFLOW_TYPE = "BenchRawOneStep"

WORKFLOW = """\
name: bench-throughput
jobs:
  one:
    runs-on: {group}
    steps:
      - id: only
        uses: exec/shell
        with:
          command: "true"
"""


@activity.defn(name="bench/true")
async def run_true() -> int:
    """What the agent's step does: start ``true`` and wait for it."""
    process = await asyncio.create_subprocess_exec("true")
    return await process.wait()


@workflow.defn(name=RAW_WORKFLOW_TYPE)
class RawOneStep:
    """The baseline: one activity, nothing else."""

    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_activity(run_true, start_to_close_timeout=timedelta(minutes=5))


PROCESSES = ("server", "agent", "temporal", "bench")


async def history_summary(client: object, workflow_id: str) -> str:
    """Events, workflow tasks and payload bytes of one run: what each run costs Temporal."""
    from temporalio.client import Client

    assert isinstance(client, Client)
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    events = history.events
    tasks = sum(1 for e in events if e.HasField("workflow_task_completed_event_attributes"))
    started = events[0].workflow_execution_started_event_attributes
    commands = sum(
        e.ByteSize() for e in events if e.HasField("activity_task_scheduled_event_attributes")
        or e.HasField("workflow_execution_completed_event_attributes")
    )  # fmt: skip
    return (
        f"{len(events)} events, {tasks} workflow tasks, input {started.input.ByteSize()} B, "
        f"scheduled+completed {commands} B, whole history {sum(e.ByteSize() for e in events)} B"
    )


async def batch(start: Callable[[int], Awaitable[Awaitable[None]]], runs: int, clients: int) -> float:
    """Runs per second: ``runs`` started by ``clients`` concurrent starters, each awaited to its end."""
    counter = itertools.count()
    finishing: list[asyncio.Task[None]] = []

    async def starter() -> None:
        while (n := next(counter)) < runs:
            finishing.append(asyncio.ensure_future(await start(n)))

    began = time.perf_counter()
    try:
        await asyncio.gather(*(starter() for _ in range(clients)))
        await asyncio.gather(*finishing)
    except BaseException:
        # While Temporal is still up: a result() left waiting would retry against a stopped server.
        for task in finishing:
            task.cancel()
        await asyncio.gather(*finishing, return_exceptions=True)
        raise
    return runs / (time.perf_counter() - began)


async def bench(a: argparse.Namespace) -> int:
    import httpx
    from temporalio.client import WorkflowFailureError
    from temporalio.worker import Worker

    from waterflow_agent.command import agent_argv
    from waterflow_core.runs import RunProgress
    from waterflow_core.temporal import connect, sandboxed_runner
    from waterflow_testing.devserver import DevServer
    from waterflow_testing.processes import free_port, read_log, spawn_logged, stop_process

    # The sandbox must import this module by a real name: re-import ourselves as `bench_throughput`.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_throughput as me

    group = f"bench-tp-{uuid.uuid4().hex[:6]}"
    body = {"workflow": WORKFLOW.replace("{group}", group)}
    tag = uuid.uuid4().hex[:8]
    print(f"load average before: {load_average()} (1/5/15 min)", flush=True)
    rates: dict[str, list[float]] = {"waterflow": [], "raw": []}
    cpu: dict[str, dict[str, float]] = {side: dict.fromkeys(PROCESSES, 0.0) for side in rates}
    last_ids: dict[str, str] = {}
    histories: dict[str, str] = {}
    failures: list[str] = []
    agent_log_tail = ""
    with tempfile.TemporaryDirectory(prefix="waterflow-bench-") as tmp:
        tmpdir = Path(tmp)
        temporal = DevServer(tmpdir / "temporal", headless=True)
        await temporal.start()
        api = agent = None
        try:
            client = await connect(temporal.address, temporal.namespace)
            agent, _ = spawn_logged(
                agent_argv(
                    f"bench-agent-{tag}", [group], temporal_address=temporal.address,
                    namespace=temporal.namespace, workdir=tmpdir / "agent-work", args=["--log-level", "warning"],
                ),
                tmpdir / "agent.log", cwd=tmpdir,
            )  # fmt: skip
            port = free_port()
            api, _ = spawn_logged(
                [sys.executable, "-m", "waterflow_server", "--host", "127.0.0.1", "--port", str(port),
                 "--temporal-address", temporal.address, "--namespace", temporal.namespace],
                tmpdir / "server.log", cwd=tmpdir,
            )  # fmt: skip
            raw_queue = f"bench-raw-{tag}"
            raw_worker = Worker(
                client, task_queue=raw_queue, workflows=[me.RawOneStep], activities=[me.run_true],
                max_concurrent_activities=MAX_CONCURRENT, workflow_runner=sandboxed_runner("bench_throughput"),
            )  # fmt: skip
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http, raw_worker:
                await wait_ready(http, api, agent, tmpdir)

                async def waterflow_start(n: int) -> Awaitable[None]:
                    response = await http.post("/v1/workflows", json=body)
                    if response.status_code != 201:
                        raise RuntimeError(f"submit answered {response.status_code}: {response.text}")
                    handle = client.get_workflow_handle(response.json()["id"], result_type=RunProgress)
                    last_ids["waterflow"] = handle.id

                    async def finished() -> None:
                        # A failed run is counted and reported (it fails the goal), not fatal:
                        # the other runs' numbers and the agent's log are what explain it.
                        try:
                            progress = await handle.result()
                        except WorkflowFailureError as exc:
                            failures.append(f"{handle.id}: {exc.cause or exc}")
                            return
                        if progress.status != "succeeded":
                            failures.append(f"{handle.id}: ended {progress.status}")

                    return finished()

                async def raw_start(n: int) -> Awaitable[None]:
                    # The same eager workflow start the server's start_run asks for (ADR 0048): the
                    # baseline is the best a raw client + worker can do, not one hop slower.
                    handle = await client.start_workflow(
                        me.RawOneStep.run, id=f"bench-raw-{tag}-{uuid.uuid4().hex[:8]}", task_queue=raw_queue,
                        request_eager_start=True,
                    )
                    last_ids["raw"] = handle.id

                    async def finished() -> None:
                        if await handle.result() != 0:
                            raise RuntimeError(f"raw run {handle.id}: true failed")

                    return finished()

                sides = {"waterflow": waterflow_start, "raw": raw_start}
                for start in sides.values():  # warm-up: imports, connections, sandbox caches
                    await batch(start, max(a.runs // 5, MAX_CONCURRENT), a.clients)
                for round_no in range(a.rounds):
                    order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
                    for name in order:
                        pids = {"server": api.pid, "agent": agent.pid, "temporal": temporal.pid, "bench": os.getpid()}
                        before = {p: cpu_seconds(pid) or 0.0 for p, pid in pids.items() if pid}
                        rate = await batch(sides[name], a.runs, a.clients)
                        for p, used in before.items():
                            cpu[name][p] += (cpu_seconds(pids[p]) or 0.0) - used
                        rates[name].append(rate)
                        print(f"round {round_no + 1} {name}: {rate:.2f} runs/s", flush=True)
                for side, wid in last_ids.items():
                    histories[side] = await history_summary(client, wid)
            if failures:
                agent_log_tail = read_log(tmpdir / "agent.log")[-4000:]
        finally:
            for process in (api, agent):
                if process is not None:
                    await stop_process(process, 15.0)
            await temporal.stop()

    load_after = load_average()
    wf, raw = rates["waterflow"], rates["raw"]
    ratio = median(wf) / median(raw)
    row = Row(
        "throughput", f"1-step runs through REST ({a.clients} clients, {a.runs} runs/batch)", "runs/s",
        median(wf), percentile(wf, 5), baseline="raw start_workflow + in-process worker, 1 activity",
        baseline_median=median(raw), baseline_p95=percentile(raw, 5), better="higher",
        goal=f"≥ {BUDGET_PCT:g} % of raw, every run succeeded", met=ratio * 100 >= BUDGET_PCT and not failures,
        samples=len(wf), notes={"waterflow_runs_per_s": wf, "raw_runs_per_s": raw,
                                "p95_column": "5th percentile (worst batches)", "failed_runs": failures,
                                "cpu_seconds": cpu},
    )  # fmt: skip
    print()
    print_table([row])
    print("'p95' column of a throughput row: the 5th percentile of the batches (the slow end)")
    timed_runs = a.runs * a.rounds
    for side in rates:
        per_run = {p: cpu[side][p] / timed_runs * 1000 for p in PROCESSES}
        shown = ", ".join(f"{p} {ms:.1f}" for p, ms in per_run.items())
        print(f"CPU ms per run, {side}: {shown} (total {sum(per_run.values()):.1f})")
        print(f"one {side} run: {histories.get(side, 'n/a')}")
    print(f"waterflow / raw: {ratio * 100:.0f} %; load average after: {load_after} (1/5/15 min)")
    if failures:
        print(f"{len(failures)} waterflow run(s) did not succeed, e.g. {failures[0]}")
        print(f"end of the agent's log:\n{agent_log_tail}")
    if a.json:
        write_json(a.json, "throughput", [row], quick=a.quick)
    return 1 if a.strict and not row.met else 0


async def wait_ready(http: object, api: object, agent: object, tmpdir: Path) -> None:
    """The server answers ``/healthz`` and the agent logged ``ready``."""
    import httpx

    from waterflow_testing.processes import read_log

    assert isinstance(http, httpx.AsyncClient)
    deadline = time.monotonic() + 120
    server_ok = agent_ok = False
    while not (server_ok and agent_ok):
        if not server_ok:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                response = await http.get("/healthz", timeout=3)
                server_ok = response.status_code == 200 and response.json().get("status") == "ok"
        agent_ok = agent_ok or "ready" in read_log(tmpdir / "agent.log")
        for name, process in (("server", api), ("agent", agent)):
            if process.poll() is not None:  # type: ignore[attr-defined]
                raise RuntimeError(f"{name} exited early:\n{read_log(tmpdir / f'{name}.log')[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("server or agent not ready within 120 s")
        await asyncio.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="runs per batch (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="timed batches per side (default 3)")
    parser.add_argument("--clients", type=int, default=10, help="concurrent submitters (default 10)")
    parser.add_argument("--quick", action="store_true", help="20 runs per batch, 1 round")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON (bench/run_all.py)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the budget is missed")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.rounds = min(args.runs, 20), 1
    if args.runs < 1 or args.rounds < 1 or args.clients < 1:
        parser.error("--runs, --rounds and --clients must be at least 1")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
