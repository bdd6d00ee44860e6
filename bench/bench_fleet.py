"""An agent fleet on one machine: idle footprint, N agents with routing verified, fan-out width.

Everything runs on 127.0.0.1 in a temp dir: an embedded Temporal (``DevServer``, headless), the
interpreter worker in this process (``build_interpreter_worker``, as the server runs it), and:

* **footprint**: ``--bare`` bare ``temporalio`` worker processes (connect, one worker polling one
  queue with one no-op activity: the floor Python + Temporal cost) beside the fleet; after every
  agent is ready and a settle pause, a quiet window measures each process tree (the agent and its
  process sentinel): RSS and PSS (``/proc/<pid>/smaps_rollup``), CPU over the window, threads and
  open file descriptors. Per-agent figures are medians and P95 over the fleet.
* **fleet**: ``--agents`` real agent processes (``python -P -m waterflow_agent``), all in one
  group, started at most ``--spawn-parallel`` at a time (a process counts as starting until it
  prints ``ready``), each with ``--heartbeat-interval`` (30 s by default: the fleet-scale setting,
  ADR 0045) and a bytecode cache they share. Reported: wall time from the first spawn to the last
  ``ready``, each agent's spawn-to-ready time and CPU seconds until ready, total RSS/PSS, how many
  agents run their reload watcher and how many fell back to polling (the per-user inotify
  instance limit, ADR 0014/0045).
* **route all**: one ``each-server`` run over the whole group; each instance's step prints the
  agent's name as rendered on the agent (``server.name``) and the ``FLEET_AGENT`` variable the
  bench gave that agent's process. Checked: one instance per agent, each run by that agent
  (``StepProgress.agent``), printing its own name twice, and each agent's own step log
  (``<workdir>/logs/steps.jsonl``) holds exactly one step. Timed from ``start_run`` to the result.
  When agents are missing, the notes say why (``registrations_not_live``: the age of each one's
  ``last_seen``, or no registration).
* **fan-out**: ``each-server`` runs limited (``RunInput.limit``) to the first W agents, for each
  width of ``--widths``, against the baseline: a hand-written workflow in this process that fans
  the same number of no-op activities out (``asyncio.gather``) to an in-process worker on the same
  Temporal. ``--rounds`` rounds, the two sides alternating.

Rows follow ``bench/_report.py``; ``--json PATH`` writes them for ``bench/run_all.py``. No budget in
the issue is a ratio for these, so the rows are informational except the fleet's correctness (all
agents ready, routing verified), which ``--strict`` turns into the exit status.

Run: ``python bench/bench_fleet.py [--agents 250] [--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import Row, load_average, median, percentile, print_table, write_json

BENCH = "fleet"
BASELINE_WORKFLOW = "BenchFleetFanout"
BARE_WORKER = """
import asyncio, sys
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

@activity.defn(name="noop")
async def noop() -> None:
    return None

async def main() -> None:
    client = await Client.connect(sys.argv[1], namespace=sys.argv[2])
    async with Worker(client, task_queue=sys.argv[3], activities=[noop]):
        print("bare worker ready", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""
WATCH_FALLBACK = "cannot watch the plugin directories"
# The host's per-user limit, and this user namespace's (lower when the bench runs in its own namespace).
INOTIFY_LIMITS = ("/proc/sys/fs/inotify/max_user_instances", "/proc/sys/user/max_inotify_instances")
CLK_TCK = os.sysconf("SC_CLK_TCK")


@activity.defn(name="bench-fleet-noop")
async def noop_activity(index: int) -> int:
    return index


@workflow.defn(name=BASELINE_WORKFLOW, sandboxed=False)
class FanoutBaseline:
    """``width`` no-op activities at once on the in-process worker's queue: the floor of a fan-out."""

    @workflow.run
    async def run(self, width: int) -> int:
        done = await asyncio.gather(
            *(
                workflow.execute_activity(
                    "bench-fleet-noop", i, start_to_close_timeout=timedelta(minutes=5), activity_id=f"s/{i}"
                )
                for i in range(width)
            )
        )
        return len(done)


# -- /proc sampling -------------------------------------------------------------------------------


@dataclass
class Usage:
    """One process tree at one moment."""

    rss_kb: int = 0
    pss_kb: int = 0
    cpu_ticks: int = 0
    threads: int = 0
    fds: int = 0
    processes: int = 0


def mem_available_mib() -> float:
    """``MemAvailable`` of ``/proc/meminfo`` (the memory guard: this VM is shared)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the agent and its process sentinel)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
    return pids


def usage(pid: int, *, memory: bool = True) -> Usage:
    """CPU (and, with ``memory``, RSS/PSS, threads, fds) of the tree of ``pid``; zeros once gone."""
    total = Usage()
    for p in tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total.cpu_ticks += int(fields[11]) + int(fields[12])  # utime + stime
            total.threads += int(fields[17])
            total.processes += 1
            if memory:
                for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key == "Rss":
                        total.rss_kb += int(value.split()[0])
                    elif key == "Pss":
                        total.pss_kb += int(value.split()[0])
                total.fds += len(os.listdir(f"/proc/{p}/fd"))
        except (OSError, ValueError, IndexError):
            continue
    return total


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Child:
    """A process the bench started, with its log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    spawned: float
    ready_at: float | None = None
    ready_cpu_s: float | None = None  # CPU seconds of its process tree when it printed ready

    def mark_ready(self) -> None:
        self.ready_at = time.monotonic()
        self.ready_cpu_s = usage(self.process.pid, memory=False).cpu_ticks / CLK_TCK


def log_text(child: Child) -> str:
    try:
        return child.log.read_text(errors="replace")
    except OSError:
        return ""


async def wait_ready(children: list[Child], needle: str, timeout: float) -> None:
    """Until every child's log has ``needle``; records each one's ready time."""
    deadline = time.monotonic() + timeout
    while True:
        pending = [c for c in children if c.ready_at is None]
        for child in pending:
            if needle in log_text(child):
                child.mark_ready()
            elif child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{log_text(child)[-3000:]}")
        if all(c.ready_at is not None for c in children):
            return
        if time.monotonic() > deadline:
            missing = [c.name for c in children if c.ready_at is None]
            raise RuntimeError(f"{len(missing)} not ready within {timeout:.0f}s: {', '.join(missing[:10])}")
        await asyncio.sleep(0.2)


def child_environment(tmpdir: Path, **extra: str) -> dict[str, str]:
    """This process's environment, with a bytecode cache the agents share (in ``tmpdir``).

    An installed agent has its modules compiled (pip writes the ``.pyc`` files); from a source
    tree with ``PYTHONDONTWRITEBYTECODE`` set, every agent would compile all ~1,100 modules it
    imports from source, which was most of its start-up CPU (ADR 0045, 2026-12-01).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(tmpdir / "pycache"), **extra}


def spawn(name: str, argv: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> Child:
    from waterflow_testing.processes import spawn_logged

    process, _ = spawn_logged(argv, log, cwd=cwd, env=env)
    return Child(name, process, log, time.monotonic())


async def stop_all(children: list[Child], grace: float = 20.0) -> None:
    """SIGTERM every child at once, then SIGKILL each process group still alive after ``grace``."""
    for child in children:
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
    deadline = time.monotonic() + grace
    while any(c.process.poll() is None for c in children) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for child in children:
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)  # the agent runs in its own session
        child.process.wait()


# -- the bench ------------------------------------------------------------------------------------


def route_workflow(group: str) -> str:
    return (
        f"name: fleet-route\njobs:\n  route:\n    runs-on: {group}\n    strategy: {{each-server: true}}\n"
        "    steps:\n      - id: who\n        uses: exec/shell\n"
        "        with: {command: 'echo \"$<< server.name >> $FLEET_AGENT\"'}\n"
    )


def fanout_workflow(group: str) -> str:
    return (
        f"name: fleet-fanout\njobs:\n  fan:\n    runs-on: {group}\n    strategy: {{each-server: true}}\n"
        "    steps:\n      - id: s\n        uses: exec/shell\n        with: {command: 'true'}\n"
    )


def steps_logged(workdir: Path, workflow_id: str) -> list[dict[str, Any]]:
    """The records of one agent's JSON lines step log, grouped per step (workflow, run, step path)."""
    path = workdir / "logs" / "steps.jsonl"
    if not path.exists():
        return []
    steps: dict[tuple[Any, ...], dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("workflow_id") != workflow_id:
            continue
        key = (record.get("workflow_id"), record.get("run_id"), record.get("step_path"))
        steps.setdefault(key, {"lines": []})["lines"].append(str(record.get("message", "")))
    return list(steps.values())


def stats(values: list[float]) -> tuple[float, float]:
    return median(values), percentile(values, 95)


async def bench(a: argparse.Namespace) -> int:
    from temporalio.worker import Worker

    from waterflow_agent.command import agent_argv
    from waterflow_core.dsl import load_workflow
    from waterflow_core.interpreter import build_interpreter_worker, start_run
    from waterflow_core.runs import RunInput, RunProgress
    from waterflow_core.temporal import connect
    from waterflow_testing.devserver import DevServer

    load_before = load_average()
    print(f"load average before: {load_before} (1/5/15 min)", flush=True)
    limits = {f: Path(f).read_text().strip() for f in INOTIFY_LIMITS if Path(f).exists()}
    print("inotify instance limits: " + ", ".join(f"{f} = {v}" for f, v in limits.items()), flush=True)
    rows: list[Row] = []
    notes: dict[str, Any] = {}
    ok = True
    tag = uuid.uuid4().hex[:6]
    group = f"fleet-{tag}"
    children: list[Child] = []
    route_row: Row | None = None
    names: list[str] = []
    n = 0
    with tempfile.TemporaryDirectory(prefix="waterflow-bench-fleet-") as tmp:
        tmpdir = Path(tmp)
        # Temporal refuses long polls past frontend.namespaceCount (1200 by default) per namespace;
        # an idle agent holds ~15 (the SDK's 5 per task type and queue), so ~80 agents reach it.
        limit = {"frontend.namespaceCount": a.namespace_polls} if a.namespace_polls else {}
        server = DevServer(tmpdir / "temporal", headless=True, dynamic_config=limit)
        await server.start()
        try:
            client = await connect(server.address, server.namespace)

            # Footprint baseline: bare temporalio workers, started first and left alone.
            bare = [
                spawn(
                    f"bare-{i}",
                    [sys.executable, "-c", BARE_WORKER, server.address, server.namespace, f"bare-{tag}-{i}"],
                    tmpdir / f"bare-{i}.log",
                    tmpdir,
                    env=child_environment(tmpdir),
                )
                for i in range(a.bare)
            ]
            children += bare
            await wait_ready(bare, "bare worker ready", 120)

            # The fleet, at most --spawn-parallel starting at once.
            agents: list[Child] = []
            names = [f"{group}-{i:03d}" for i in range(a.agents)]
            t_fleet = time.monotonic()
            for index, name in enumerate(names):
                while sum(1 for c in agents if c.ready_at is None) >= a.spawn_parallel:
                    await wait_some(agents)
                if mem_available_mib() < a.min_available_mib:
                    print(
                        f"memory guard: {mem_available_mib():.0f} MiB available (< --min-available-mib "
                        f"{a.min_available_mib}): not starting more than {index} agents",
                        flush=True,
                    )
                    names = names[:index]
                    break
                argv = agent_argv(
                    name,
                    [group],
                    temporal_address=server.address,
                    namespace=server.namespace,
                    workdir=tmpdir / "agents" / name,
                    args=["--heartbeat-interval", f"{a.heartbeat_interval:g}s"],
                )
                child = spawn(
                    name, argv, tmpdir / f"{name}.log", tmpdir, env=child_environment(tmpdir, FLEET_AGENT=name)
                )
                agents.append(child)
                children.append(child)
            await wait_ready(agents, " ready: polling", a.ready_timeout)
            n = len(agents)
            fleet_start = time.monotonic() - t_fleet
            spawn_to_ready = [c.ready_at - c.spawned for c in agents if c.ready_at is not None]
            cpu_to_ready = [c.ready_cpu_s for c in agents if c.ready_cpu_s is not None]
            fallback = sum(1 for c in agents if WATCH_FALLBACK in log_text(c))
            print(f"fleet: {n} agents ready in {fleet_start:.1f}s; {fallback} without a reload watcher", flush=True)

            # Quiet window: nothing runs; measure every agent and bare worker.
            await asyncio.sleep(a.settle)
            watched = [*agents, *bare]
            temporal_pid = server.pid
            cpu0 = {c.name: usage(c.process.pid, memory=False).cpu_ticks for c in watched}
            temporal0 = usage(temporal_pid, memory=False).cpu_ticks if temporal_pid else 0
            t0 = time.monotonic()
            await asyncio.sleep(a.quiet)
            window = time.monotonic() - t0
            end = {c.name: usage(c.process.pid) for c in watched}
            temporal_cpu = (usage(temporal_pid, memory=False).cpu_ticks - temporal0) if temporal_pid else 0

            def cpu_pct(c: Child) -> float:
                return (end[c.name].cpu_ticks - cpu0[c.name]) / CLK_TCK / window * 100

            def per(children_: list[Child], attr: str, scale: float = 1.0) -> list[float]:
                return [getattr(end[c.name], attr) * scale for c in children_]

            mib = 1 / 1024
            for metric, unit, attr, scale in (
                ("idle RSS per agent (agent + sentinel)", "MiB", "rss_kb", mib),
                ("idle PSS per agent (agent + sentinel)", "MiB", "pss_kb", mib),
                ("threads per agent", "threads", "threads", 1.0),
                ("open fds per agent", "fds", "fds", 1.0),
            ):
                mine, base = per(agents, attr, scale), per(bare, attr, scale)
                rows.append(
                    Row(
                        BENCH,
                        metric,
                        unit,
                        *stats(mine),
                        baseline="bare temporalio worker process",
                        baseline_median=median(base),
                        baseline_p95=percentile(base, 95),
                        samples=len(mine),
                    )
                )
            agent_cpu, bare_cpu = [cpu_pct(c) for c in agents], [cpu_pct(c) for c in bare]
            rows.append(
                Row(
                    BENCH,
                    f"idle CPU per agent ({window:.0f} s window)",
                    "% core",
                    *stats(agent_cpu),
                    baseline="bare temporalio worker process",
                    baseline_median=median(bare_cpu),
                    baseline_p95=percentile(bare_cpu, 95),
                    samples=len(agent_cpu),
                )
            )
            total_rss = sum(per(agents, "rss_kb", mib))
            total_pss = sum(per(agents, "pss_kb", mib))
            rows.append(
                Row(
                    BENCH,
                    f"fleet start-up: {n} agents until all ready",
                    "s",
                    fleet_start,
                    goal=f"all {a.agents} asked for started and ready",
                    met=n == a.agents,
                    notes={"spawn_parallel": a.spawn_parallel, "reload_watch_fallback": fallback},
                )
            )
            rows.append(
                Row(
                    BENCH,
                    "one agent: spawn → ready (in the fleet)",
                    "s",
                    *stats(spawn_to_ready),
                    samples=len(spawn_to_ready),
                )
            )
            rows.append(
                Row(
                    BENCH,
                    "one agent: CPU spawn → ready (agent + sentinel)",
                    "s",
                    *stats(cpu_to_ready),
                    samples=len(cpu_to_ready),
                )
            )
            rows.append(
                Row(
                    BENCH,
                    f"fleet RSS total ({n} agents)",
                    "MiB",
                    total_rss,
                    notes={"pss_total_mib": round(total_pss, 1)},
                )
            )
            notes.update(
                quiet_window_s=round(window, 1),
                temporal_cpu_pct_in_window=round(temporal_cpu / CLK_TCK / window * 100, 1),
                temporal_frontend_namespace_count=a.namespace_polls or "default (1200)",
                agent_heartbeat_interval_s=a.heartbeat_interval,
                bytecode_cache="shared PYTHONPYCACHEPREFIX in the temp dir",
                agents_without_watcher=fallback,
                fleet_pss_total_mib=round(total_pss, 1),
                fleet_rss_total_mib=round(total_rss, 1),
            )
            if fallback and fallback < len(agents):
                poll_cpu = [cpu_pct(c) for c in agents if WATCH_FALLBACK in log_text(c)]
                watch_cpu = [cpu_pct(c) for c in agents if WATCH_FALLBACK not in log_text(c)]
                notes.update(
                    idle_cpu_pct_watcher_median=round(median(watch_cpu), 3),
                    idle_cpu_pct_fallback_median=round(median(poll_cpu), 3),
                )
            print(
                f"quiet window {window:.0f}s: Temporal used {notes['temporal_cpu_pct_in_window']} % of a core",
                flush=True,
            )

            # Route all, then fan-out widths against the in-process baseline.
            wf_queue, base_queue = f"bench-wf-{tag}", f"bench-base-{tag}"
            route_run = RunInput.plan(load_workflow(route_workflow(group)))
            fan_run = RunInput.plan(load_workflow(fanout_workflow(group)))
            try:
                async with (
                    build_interpreter_worker(client, wf_queue, max_concurrent_activities=n + 10),
                    Worker(
                        client,
                        task_queue=base_queue,
                        workflows=[FanoutBaseline],
                        activities=[noop_activity],
                        max_concurrent_activities=max(a.widths) + 10,
                    ),
                ):
                    t = time.perf_counter()
                    handle = await start_retrying(
                        client,
                        f"fleet-route-{tag}",
                        RunProgress,
                        lambda: start_run(client, route_run, workflow_id=f"fleet-route-{tag}", task_queue=wf_queue),
                    )
                    progress = await result_of(handle, a.run_timeout)
                    route_s = time.perf_counter() - t
                    problems = check_routing(progress, names)
                    route_row = Row(
                        BENCH,
                        f"route all: each-server over {n} agents, each runs its own step",
                        "s",
                        route_s,
                        goal="every agent ran exactly its step",
                        notes={"problems": problems},
                    )
                    if problems:
                        notes["registrations_not_live"] = await registrations_not_live(client, names)
                    rows.append(route_row)

                    for width in a.widths:
                        if width > n:
                            continue
                        limited = fan_run.model_copy(update={"limit": names[:width]})
                        waterflow: list[float] = []
                        baseline: list[float] = []
                        for round_no in range(-1, a.rounds):  # one untimed warm-up round
                            order = ["wf", "base"] if round_no % 2 else ["base", "wf"]
                            for side in order:
                                t = time.perf_counter()
                                if side == "wf":
                                    wf_id = f"fleet-fan-{width}-{round_no}-{tag}"
                                    handle = await start_retrying(
                                        client,
                                        wf_id,
                                        RunProgress,
                                        partial(start_run, client, limited, task_queue=wf_queue, workflow_id=wf_id),
                                    )
                                    progress = await result_of(handle, a.run_timeout)
                                    ran = [s for j in progress.jobs for s in j.steps if s.status == "success"]
                                    if progress.status != "succeeded" or len(ran) != width:
                                        raise RuntimeError(f"fan-out {width}: {progress.status}, {len(ran)} steps")
                                else:
                                    base_id = f"fleet-base-{width}-{round_no}-{tag}"
                                    base_handle = await start_retrying(
                                        client,
                                        base_id,
                                        int,
                                        partial(
                                            client.start_workflow,
                                            BASELINE_WORKFLOW,
                                            width,
                                            task_queue=base_queue,
                                            id=base_id,
                                            result_type=int,
                                        ),
                                    )
                                    done = await result_of(base_handle, a.run_timeout)
                                    if done != width:
                                        raise RuntimeError(f"baseline {width}: {done} activities")
                                elapsed = (time.perf_counter() - t) * 1000
                                if round_no >= 0:
                                    (waterflow if side == "wf" else baseline).append(elapsed)
                        rows.append(
                            Row(
                                BENCH,
                                f"fan-out: each-server over {width} agents (1 step each)",
                                "ms",
                                *stats(waterflow),
                                baseline=f"{width} in-process no-op activities fanned out",
                                baseline_median=median(baseline),
                                baseline_p95=percentile(baseline, 95),
                                samples=len(waterflow),
                            )
                        )
                        print(
                            f"fan-out {width}: {median(waterflow):.0f} ms, in-process {median(baseline):.0f} ms",
                            flush=True,
                        )
            except Exception as err:  # noqa: BLE001 - keep what was measured; a failure under load is a result too
                ok = False
                notes["error"] = f"{type(err).__name__}: {err}"
                print(f"route/fan-out phase failed: {notes['error']}", flush=True)
                rows.append(
                    Row(BENCH, "route all and fan-out completed", "s", float("nan"), goal="no error", met=False)
                )
        finally:
            await stop_all(children)
            await server.stop()
        if route_row is not None:  # the agents flushed their step logs on their way out
            problems = route_row.notes["problems"] + logged_once(names, tmpdir / "agents", f"fleet-route-{tag}")
            route_row.notes["problems"] = problems[:20]
            route_row.met = not problems
            ok = ok and n == a.agents and not problems
            if problems:
                print("routing NOT verified:\n  " + "\n  ".join(problems[:20]), flush=True)

    load_after = load_average()
    print()
    print_table(rows, title=f"agent fleet: {n} agents, {a.bare} bare workers (load {load_before} → {load_after})")
    print(f"notes: {json.dumps(notes)}")
    print(f"load average after: {load_after} (1/5/15 min)")
    if a.json:
        write_json(a.json, BENCH, rows, load_average_before=load_before, notes={**notes, "inotify_limits": limits})
    return 1 if a.strict and not ok else 0


async def registrations_not_live(client: Any, names: list[str]) -> list[str]:
    """Why agents were missing from the group: each one the registry does not count as live, with
    the age of its ``last_seen`` (or that it has no registration at all)."""
    from datetime import UTC, datetime

    from waterflow_core.agent_registry import list_agents

    now = datetime.now(UTC)
    listed = {agent.name: agent for agent in await list_agents(client, include_stale=True)}
    found: list[str] = []
    for name in names:
        agent = listed.get(name)
        if agent is None:
            found.append(f"{name}: no running registration with a memo")
        elif not agent.is_alive(now):
            age = (now - agent.last_seen).total_seconds() if agent.last_seen else float("nan")
            found.append(f"{name}: last_seen {age:.1f}s ago (interval {agent.heartbeat_interval_seconds:g}s)")
    return found[:20]


async def start_retrying(client: Any, workflow_id: str, result_type: type, start: Callable[[], Awaitable[Any]]) -> Any:
    """``start()``; when the call fails (an overloaded dev server times out), the handle of the
    workflow if it did start, else try again (five times)."""
    from temporalio.service import RPCError

    for attempt in range(5):
        try:
            return await start()
        except RPCError as err:
            print(f"starting {workflow_id} failed ({err}); attempt {attempt + 1} of 5", flush=True)
            handle = client.get_workflow_handle(workflow_id, result_type=result_type)
            with contextlib.suppress(RPCError):
                await handle.describe()
                return handle
            await asyncio.sleep(2)
    raise RuntimeError(f"could not start {workflow_id}")


async def result_of(handle: Any, timeout: float) -> Any:
    """``handle.result()``, asked again when the dev server is overloaded ("Workflow is busy")."""
    from temporalio.service import RPCError

    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.wait_for(handle.result(), max(1.0, deadline - time.monotonic()))
        except RPCError as err:
            if time.monotonic() > deadline:
                raise
            print(f"waiting for {handle.id}: {err}; asking again", flush=True)
            await asyncio.sleep(1)


async def wait_some(agents: list[Child]) -> None:
    """Wait until one more starting agent is ready (or fail if one exited)."""
    while True:
        for child in agents:
            if child.ready_at is None:
                if " ready: polling" in log_text(child):
                    child.mark_ready()
                    return
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited:\n{log_text(child)[-3000:]}")
        await asyncio.sleep(0.1)


def check_routing(progress: Any, names: list[str]) -> list[str]:
    """The run: one instance per agent, each run by that agent, printing the agent's name twice."""
    problems: list[str] = []
    if progress.status != "succeeded":
        problems.append(f"run {progress.status}: {progress.error}")
    steps = [s for j in progress.jobs for s in j.steps]
    by_instance = {s.instance: s for s in steps}
    if sorted(by_instance) != sorted(names) or len(steps) != len(names):
        problems.append(f"{len(steps)} steps for {len(names)} agents")
    for name in names:
        step = by_instance.get(name)
        if step is None:
            problems.append(f"{name}: no instance")
            continue
        printed = str(step.outputs.get("stdout", "")).strip()
        if step.agent != name or printed != f"{name} {name}":
            problems.append(f"{name}: ran on {step.agent!r}, printed {printed!r}")
    return problems


def logged_once(names: list[str], agents_dir: Path, workflow_id: str) -> list[str]:
    """Each agent's own step log: exactly one step of the run, which printed the agent's name."""
    problems: list[str] = []
    for name in names:
        logged = steps_logged(agents_dir / name, workflow_id)
        if len(logged) != 1 or not any(f"{name} {name}" in line for line in logged[0]["lines"]):
            problems.append(f"{name}: its own step log has {len(logged)} step(s) of the run")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=250, help="agents in the fleet (default 250; --quick 10)")
    parser.add_argument("--bare", type=int, default=3, help="bare temporalio worker processes (baseline, default 3)")
    parser.add_argument(
        "--spawn-parallel", type=int, default=8, help="agents starting at once (spawned, not yet ready; default 8)"
    )
    parser.add_argument("--widths", default="10,25,50", help="fan-out widths, comma-separated (default 10,25,50)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per fan-out width (default 5)")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after the last ready before measuring")
    parser.add_argument("--quiet", type=float, default=30.0, help="quiet window for idle CPU, seconds (default 30)")
    parser.add_argument(
        "--min-available-mib",
        type=int,
        default=4096,
        help="stop starting agents when MemAvailable falls below this (default 4096)",
    )
    parser.add_argument(
        "--namespace-polls",
        type=int,
        default=0,
        help="Temporal's frontend.namespaceCount (concurrent long polls per namespace; 0: its default, 1200)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=30.0,
        help="each agent's --heartbeat-interval in seconds (default 30, the fleet-scale setting: ADR 0045)",
    )
    parser.add_argument("--ready-timeout", type=float, default=900.0, help="seconds for the whole fleet to be ready")
    parser.add_argument("--run-timeout", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--quick", action="store_true", help="10 agents, widths 5,10, 2 rounds, short windows")
    parser.add_argument("--json", metavar="PATH", help="write the rows as JSON (for bench/run_all.py)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the fleet is not all ready and routed")
    args = parser.parse_args()
    if args.quick:
        args.agents = min(args.agents, 10) if "--agents" in sys.argv else 10
        args.bare, args.rounds, args.settle, args.quiet = min(args.bare, 2), 2, 3.0, 5.0
        if "--widths" not in sys.argv:
            args.widths = "5,10"
    args.widths = sorted({int(w) for w in str(args.widths).split(",") if w.strip()})
    if args.agents < 1 or args.bare < 1 or not args.widths:
        parser.error("--agents, --bare and --widths need at least 1")
    sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
