"""Load and chaos for the whole stack: kill -9 what runs it, then check every run and every step.

A :class:`ChaosStack` is a Temporal dev server, one ``waterflow server`` and a few agents, all real
processes in one directory, each of which can be SIGKILLed and started again on the same data,
name and port (:meth:`ChaosStack.kill_agent`, :meth:`ChaosStack.kill_server`,
:meth:`ChaosStack.kill_temporal`), or Temporal frozen for a while (:meth:`ChaosStack.freeze_temporal`).

The workflows of :data:`MIXED` write a *ledger*: every execution of a step appends
``start <run> <step> <time>`` and, when done, ``end <run> <step> <time>`` to a file named after
the agent that ran it. :func:`check_ledger` then holds the stack to its guarantees (ADR 0046):
every step of every run that should have run did, exactly once, except an execution that was in
flight when its agent or Temporal was killed or frozen, which may have run again (at least once).
``bench/bench_chaos.py`` and ``tests/test_e2e_chaos.py`` are built on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import textwrap
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx

from waterflow_testing.children import AgentProcess
from waterflow_testing.devserver import DevServer
from waterflow_testing.processes import free_port
from waterflow_testing.server import ServerProcess

__all__ = [
    "MIXED",
    "ONE_STEP",
    "ChaosStack",
    "Disruption",
    "Kind",
    "OutageReport",
    "Outcome",
    "check_ledger",
    "read_ledger",
    "submit_all",
    "temporal_outage",
    "wait_all",
]

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out"})

# A dead agent's step is noticed when its heartbeats stop, then retried (on any agent of the group).
_STEP_OPTS = "heartbeat-timeout: 3s\n  retry: {max-attempts: 20, initial-interval: 200ms, max-interval: 2s}"


def _step(label: str, sleep: float = 0.05, *, fail: bool = False) -> str:
    """An ``exec/shell`` command that records its execution in the ledger of the agent running it."""
    ledger = '"$<< inputs.dir >>/$<< server.name >>.ledger"'
    line = f"$<< workflow.id >> {label}"
    tail = "exit 3" if fail else f'echo "end {line} $(date +%s.%N)" >> {ledger}'
    return f'echo "start {line} $(date +%s.%N)" >> {ledger}; sleep {sleep}; {tail}'


def _shell(step_id: str, label: str, sleep: float = 0.05, *, indent: int = 6, extra: str = "") -> str:
    text = f"- id: {step_id}\n  uses: exec/shell\n  {_STEP_OPTS}\n  with: {{command: '{_step(label, sleep)}'}}\n{extra}"
    return textwrap.indent(text, " " * indent)


@dataclass(frozen=True)
class Kind:
    """One workflow of the mixed load: its text, the status its runs end in, the steps they record."""

    name: str
    text: Callable[[str, str], str]
    """``text(group, run_name)`` → the workflow's YAML."""
    status: str
    ends: tuple[str, ...]
    """Steps that must complete (an ``end`` line in the ledger)."""
    starts_only: tuple[str, ...] = ()
    """Steps that must run and fail (a ``start`` line, never an ``end``)."""
    compensated: bool = False


def _header(name: str, group: str) -> str:
    return f"name: {name}\ninputs:\n  dir: {{type: string, required: true}}\njobs:\n"


def _sequential(group: str, name: str) -> str:
    steps = "".join(_shell(f"s{i}", f"main/s{i}") for i in (1, 2, 3))
    return _header(name, group) + f"  main:\n    runs-on: {group}\n    steps:\n{steps}"


def _parallel(group: str, name: str) -> str:
    jobs = ""
    for job, needs in (("a", ""), ("b", ""), ("c", "    needs: [a, b]\n")):
        jobs += f"  {job}:\n    runs-on: {group}\n{needs}    steps:\n{_shell('s1', f'{job}/s1')}"
    return _header(name, group) + jobs


def _fanout(group: str, name: str) -> str:
    steps = _shell("s1", "fan$<< matrix.n >>/s1")
    return _header(name, group) + (
        f"  fan:\n    runs-on: {group}\n    strategy: {{matrix: {{n: [1, 2, 3, 4]}}}}\n    steps:\n{steps}"
    )


def _compensated(group: str, name: str) -> str:
    undo = textwrap.indent(
        f"compensate:\n  uses: exec/shell\n  retry: {{max-attempts: 20, initial-interval: 200ms, max-interval: 2s}}\n"
        # A compensation takes no heartbeat-timeout: a killed agent's attempt ends at its timeout.
        f"  timeout: 10s\n  with: {{command: '{_step('main/s1.undo')}'}}\n",
        "  ",
    )
    first = _shell("s1", "main/s1", extra=undo)
    command = _step("main/s2", fail=True)
    failing = textwrap.indent(
        f"- id: s2\n  uses: exec/shell\n  heartbeat-timeout: 3s\n  with: {{command: '{command}'}}\n", " " * 6
    )
    return _header(name, group) + f"  main:\n    runs-on: {group}\n    steps:\n{first}{failing}"


def _sleeping(group: str, name: str) -> str:
    pause = textwrap.indent("- id: pause\n  uses: flow/sleep\n  with: {duration: 2s}\n", " " * 6)
    steps = _shell("s1", "main/s1") + pause + _shell("s2", "main/s2")
    return _header(name, group) + f"  main:\n    runs-on: {group}\n    steps:\n{steps}"


MIXED: tuple[Kind, ...] = (
    Kind("sequential", _sequential, "succeeded", ("main/s1", "main/s2", "main/s3")),
    Kind("parallel", _parallel, "succeeded", ("a/s1", "b/s1", "c/s1")),
    Kind("fanout", _fanout, "succeeded", tuple(f"fan{n}/s1" for n in (1, 2, 3, 4))),
    Kind("compensated", _compensated, "failed", ("main/s1", "main/s1.undo"), ("main/s2",), compensated=True),
    Kind("sleep", _sleeping, "succeeded", ("main/s1", "main/s2")),
)
"""The mixed load: sequential steps, parallel jobs, a fan-out, a failing step with a compensation,
a ``flow/sleep`` between two steps."""

ONE_STEP = Kind("one-step", lambda group, name: _header(name, group) + (
    f"  main:\n    runs-on: {group}\n    steps:\n{_shell('s1', 'main/s1')}"
), "succeeded", ("main/s1",))
"""The load test's workflow: one step."""


@dataclass
class Disruption:
    """A kill (or freeze) and the time span it covered: ``target`` is ``temporal``, ``server``, or an
    agent's name."""

    target: str
    began: float
    ended: float

    def affects(self, agent: str) -> bool:
        """Whether a step executing on ``agent`` may have had to run again because of this."""
        return self.target in ("temporal", agent)


class ChaosStack:
    """Temporal, one server and ``agents`` agents of one group under ``root`` (see the module doc)."""

    def __init__(self, root: Path, agents: int = 3, *, max_concurrent: int = 10) -> None:
        self.root = root
        self.ledger_dir = root / "ledger"
        self.group = f"chaos-{os.getpid()}-{random.randrange(1 << 30):x}"  # noqa: S311 - a name, not a secret
        self.temporal = DevServer(root / "temporal", headless=True)
        self.server_port = free_port()
        self.server: ServerProcess | None = None
        self.agent_names = [f"{self.group}-agent{i}" for i in range(agents)]
        self.agents: dict[str, AgentProcess] = {}
        self.max_concurrent = max_concurrent
        self.disruptions: list[Disruption] = []
        # Children die with the *thread* that spawned them (parent-death signal): every agent and
        # server is spawned from this one thread, which lives as long as the stack.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chaos-spawner")
        self._frozen: float | None = None

    @property
    def url(self) -> str:
        """The server's API (the same port across restarts)."""
        return f"http://127.0.0.1:{self.server_port}"

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start Temporal, the server and every agent; return once all are ready."""
        self.ledger_dir.mkdir(parents=True, exist_ok=True)
        self.temporal.start_blocking()
        for name in self.agent_names:
            self._start_agent(name)
        self._start_server()
        for agent in self.agents.values():
            agent.wait_ready()
        return self

    def stop(self) -> None:
        """Stop everything (also after a failure); Temporal last."""
        with contextlib.suppress(Exception):
            self.resume_temporal()
        if self.server is not None:
            self.server.stop(grace=10)
        for agent in self.agents.values():
            agent.stop(grace=10)
        self._spawner.shutdown()
        self.temporal.stop_blocking()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_agent(self, name: str) -> AgentProcess:
        return self._spawner.submit(self._spawn_agent, name).result()

    def _spawn_agent(self, name: str) -> AgentProcess:
        agent = AgentProcess(
            name,
            [self.group],
            address=self.temporal.address,
            workdir=self.root / name,
            args=["--max-concurrent", str(self.max_concurrent), "--log-handler", "none"],
        )
        self.agents[name] = agent.start()
        return agent

    def _start_server(self) -> ServerProcess:
        server = self._spawner.submit(self._spawn_server).result()
        return server.wait_ready()

    def _spawn_server(self) -> ServerProcess:
        self.server = ServerProcess(
            self.temporal.address,
            workdir=self.root / "server",
            port=self.server_port,
            args=["--task-queue", f"{self.group}-interpreter"],
        ).start()
        return self.server

    # -- faults --------------------------------------------------------------------------------

    def kill_agent(self, name: str, down: float = 0.0) -> None:
        """SIGKILL agent ``name``, leave it dead ``down`` seconds, start it again (same name and workdir)."""
        began = time.time()
        agent = self.agents[name]
        agent.kill()
        agent.wait()
        time.sleep(down)
        self._start_agent(name)
        # Its previous life's steps are retried once their heartbeat timeout (3 s) passes.
        self.disruptions.append(Disruption(name, began, time.time() + 4))

    def kill_server(self, down: float = 0.0) -> None:
        """SIGKILL the server (its interpreter worker with it), start it again on the same port."""
        began = time.time()
        assert self.server is not None
        self.server.kill()
        time.sleep(down)
        self._start_server()
        self.disruptions.append(Disruption("server", began, time.time()))

    def kill_temporal(self, down: float = 0.0) -> None:
        """SIGKILL Temporal, start it again on the same SQLite file and port."""
        began = time.time()
        pid = self.temporal.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        self.temporal.stop_blocking()  # reaps it
        time.sleep(down)
        self.temporal.start_blocking()
        self.disruptions.append(Disruption("temporal", began, time.time() + 4))

    def freeze_temporal(self) -> float:
        """SIGSTOP Temporal: its port stays open, nothing answers. Returns when it happened."""
        pid = self.temporal.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        self._frozen = time.time()
        return self._frozen

    def resume_temporal(self) -> None:
        """SIGCONT after :meth:`freeze_temporal`."""
        began = self._frozen
        if began is None:
            return
        pid = self.temporal.pid
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
        self._frozen = None
        self.disruptions.append(Disruption("temporal", began, time.time() + 4))

    def random_fault(self, rng: random.Random) -> str:
        """One ``kill -9`` picked by ``rng`` (agent, server or Temporal); its description."""
        roll = rng.random()
        if roll < 0.5:
            name = rng.choice(self.agent_names)
            self.kill_agent(name, down=rng.uniform(0, 2))
            return f"kill -9 agent {name.rsplit('-', 1)[1]}"
        if roll < 0.75:
            self.kill_server(down=rng.uniform(0, 2))
            return "kill -9 server"
        self.kill_temporal(down=rng.uniform(0, 2))
        return "kill -9 temporal"


# -- load ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a load's runs ended in, and what the API answered while Temporal was away."""

    ids: dict[str, Kind] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    submit_seconds: list[float] = field(default_factory=list)
    rejected: dict[int, int] = field(default_factory=dict)
    """HTTP status → how many submits got it (each retried until accepted)."""


async def _submit_one(
    http: httpx.AsyncClient, text: str, run_id: str, inputs: dict[str, str], outcome: Outcome, deadline: float
) -> None:
    started = time.monotonic()
    while True:
        try:
            response = await http.post("/v1/workflows", json={"workflow": text, "id": run_id, "inputs": inputs})
        except httpx.HTTPError:
            response = None  # the server is down (being restarted): send it again, the id makes that safe
        if response is not None and response.status_code in (200, 201, 202):
            outcome.submit_seconds.append(time.monotonic() - started)
            return
        if response is not None:
            outcome.rejected[response.status_code] = outcome.rejected.get(response.status_code, 0) + 1
            if response.status_code == 409:  # a resend after a lost answer: it is running
                return
            assert response.status_code == 503, f"submit {run_id}: {response.status_code} {response.text}"
        assert time.monotonic() < deadline, f"submit {run_id} not accepted before the deadline"
        await asyncio.sleep(0.5)


async def submit_all(
    url: str,
    group: str,
    ledger_dir: Path,
    plan: Sequence[tuple[str, Kind]],
    *,
    concurrency: int = 20,
    timeout: float = 600,
) -> Outcome:
    """Submit ``(run id, kind)`` pairs, ``concurrency`` at a time, each until the server accepts it."""
    outcome = Outcome(ids=dict(plan))
    texts = {kind.name: kind.text(group, f"{group}-{kind.name}") for _, kind in plan}
    deadline = time.monotonic() + timeout
    gate = asyncio.Semaphore(concurrency)
    inputs = {"dir": str(ledger_dir)}

    async def one(run_id: str, kind: Kind) -> None:
        async with gate:
            await _submit_one(http, texts[kind.name], run_id, inputs, outcome, deadline)

    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(60, connect=5)) as http:
        await asyncio.gather(*(one(run_id, kind) for run_id, kind in plan))
    return outcome


async def _finished(http: httpx.AsyncClient) -> dict[str, str]:
    """Run id → status of every finished run, from the listing (one visibility query per page:
    far cheaper than asking each run, whose detail needs a query the interpreter answers by replay)."""
    found: dict[str, str] = {}
    params: dict[str, str | int] = {"status": ",".join(sorted(TERMINAL)), "page_size": 500}
    while True:
        response = await http.get("/v1/workflows", params=params)
        if response.status_code != 200:
            return found
        body = response.json()
        found.update((run["id"], run["status"]) for run in body["runs"])
        if not body.get("next_page_token"):
            return found
        params["page_token"] = body["next_page_token"]


async def wait_all(url: str, outcome: Outcome, *, timeout: float = 600, concurrency: int = 10) -> None:
    """Poll until every run is finished (retrying while the server or Temporal is down); the runs
    of a kind with a compensation are read whole once, to check it ran."""
    pending = set(outcome.ids) - set(outcome.statuses)
    deadline = time.monotonic() + timeout
    gate = asyncio.Semaphore(concurrency)

    async def compensated(http: httpx.AsyncClient, run_id: str) -> None:
        async with gate:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    response = await http.get(f"/v1/workflows/{run_id}")
                    if response.status_code == 200:
                        await _check_compensation(response.json(), outcome.ids[run_id])
                        return
                assert time.monotonic() < deadline, f"{run_id}: its detail never answered"
                await asyncio.sleep(1)

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        while pending:
            assert time.monotonic() < deadline, f"{len(pending)} run(s) never finished: {sorted(pending)[:5]}"
            with contextlib.suppress(httpx.HTTPError):
                finished = await _finished(http)
                done = pending & set(finished)
                outcome.statuses.update((run_id, finished[run_id]) for run_id in done)
                pending -= done
                await asyncio.gather(*(compensated(http, r) for r in done if outcome.ids[r].compensated))
            if pending:
                await asyncio.sleep(1)


async def _check_compensation(run: dict[str, object], kind: Kind) -> None:
    if kind.compensated:
        compensations = run.get("compensations") or []
        assert isinstance(compensations, list)
        assert [step.get("status") for step in compensations] == ["success"], (run["id"], compensations)


# -- the ledger ----------------------------------------------------------------------------------


@dataclass
class _Execution:
    agent: str
    started: float
    ended: float | None = None


def read_ledger(ledger_dir: Path) -> dict[tuple[str, str], list[_Execution]]:
    """``(run id, step)`` → its executions in the order they started, from every agent's file."""
    found: dict[tuple[str, str], list[_Execution]] = defaultdict(list)
    for path in sorted(ledger_dir.glob("*.ledger")):
        agent = path.name.removesuffix(".ledger")
        open_: dict[tuple[str, str], list[_Execution]] = defaultdict(list)
        for line in path.read_text().splitlines():
            what, run_id, step, stamp = line.split()
            key = (run_id, step)
            if what == "start":
                execution = _Execution(agent, float(stamp))
                found[key].append(execution)
                open_[key].append(execution)
            elif open_[key]:
                open_[key].pop(0).ended = float(stamp)
    for executions in found.values():
        executions.sort(key=lambda e: e.started)
    return found


# An execution that wrote its end line this long before a kill was reported to Temporal by then.
REPORT_SLACK = 3.0


def check_ledger(
    ledger_dir: Path, outcome: Outcome, disruptions: Iterable[Disruption] = ()
) -> dict[str, int]:
    """Assert the guarantees of ADR 0046 on the ledger; returns counts (steps, re-executions).

    Every run ended in its kind's status; each step it must complete ran to its end; every step
    ran exactly once, except that an execution in flight at a kill of its agent or of Temporal
    (started before the disruption ended, not finished ``REPORT_SLACK`` before it began) may have
    been followed by another one.
    """
    disruptions = list(disruptions)
    ledger = read_ledger(ledger_dir)
    problems: list[str] = []
    steps = reexecuted = 0
    for run_id, kind in outcome.ids.items():
        if outcome.statuses.get(run_id) != kind.status:
            problems.append(f"{run_id}: {outcome.statuses.get(run_id)}, expected {kind.status}")
        for step in kind.ends + kind.starts_only:
            steps += 1
            executions = ledger.pop((run_id, step), [])
            finished = [e for e in executions if e.ended is not None]
            if step in kind.ends and not finished:
                problems.append(f"{run_id} {step}: never completed ({len(executions)} start(s))")
            # A step designed to fail has one attempt: if its task was lost with a killed agent or
            # Temporal before its command started, it fails by its heartbeat timeout instead. The
            # run still ends as designed (failed, compensated); only then may it not have started.
            may_not_start = any(d.target != "server" for d in disruptions)
            if step in kind.starts_only and (finished or not (executions or may_not_start)):
                problems.append(f"{run_id} {step}: {len(executions)} start(s), {len(finished)} end(s)")
            for earlier in executions[:-1]:
                reexecuted += 1
                if not any(_in_flight(earlier, d) for d in disruptions):
                    problems.append(f"{run_id} {step}: ran again on {executions[-1].agent} after {earlier}")
    problems += [f"{run_id} {step}: not a step of any run submitted" for run_id, step in ledger]
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:30])
    return {"steps": steps, "reexecuted": reexecuted}


def _in_flight(execution: _Execution, disruption: Disruption) -> bool:
    if not disruption.affects(execution.agent) or execution.started > disruption.ended:
        return False
    return execution.ended is None or execution.ended >= disruption.began - REPORT_SLACK


# -- Temporal unreachable ------------------------------------------------------------------------


@dataclass
class OutageReport:
    """What :func:`temporal_outage` saw: the API's answers during the outage and the recovery time."""

    answers: list[tuple[int | str, float]] = field(default_factory=list)
    """``(HTTP status or error, seconds it took)`` of each submit sent while Temporal was away."""
    health: int | str = ""
    recovery: float = 0.0
    """Seconds from Temporal being back to every run submitted before the outage finished."""


async def _answer(http: httpx.AsyncClient, path: str, body: Mapping[str, object] | None) -> tuple[int | str, float]:
    began = time.monotonic()
    try:
        response = await (http.post(path, json=body) if body is not None else http.get(path))
    except httpx.HTTPError as err:
        return type(err).__name__, time.monotonic() - began
    return response.status_code, time.monotonic() - began


async def temporal_outage(
    stack: ChaosStack, before: Outcome, seconds: float, *, kill: bool = False, probes: int = 3
) -> OutageReport:
    """Make Temporal unreachable for ``seconds`` while the runs of ``before`` are in flight.

    ``kill``: SIGKILL it and start it again on the same data and port afterwards; else SIGSTOP it
    (the port stays open and nothing answers: the harder case for clients). Meanwhile ``probes``
    submits and a ``/healthz`` are sent (each may take at most 60 s: longer is a hang); afterwards
    every run of ``before`` must finish, by the agents' and the server's own reconnecting.
    """
    report = OutageReport()
    began = time.time()
    if kill:
        pid = stack.temporal.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(stack.temporal.stop_blocking)
    else:
        stack.freeze_temporal()
    text = MIXED[0].text(stack.group, f"{stack.group}-{MIXED[0].name}")
    outage = len(stack.disruptions)
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        bodies = [
            # Ids of this outage only: a second outage resending the first one's ids would get its runs back.
            {"workflow": text, "id": f"{stack.group}-outage{outage}-{i}", "inputs": {"dir": str(stack.ledger_dir)}}
            for i in range(probes)
        ]
        results = await asyncio.gather(
            _answer(http, "/healthz", None), *(_answer(http, "/v1/workflows", body) for body in bodies)
        )
    report.health = results[0][0]
    report.answers = list(results[1:])
    await asyncio.sleep(max(0.0, began + seconds - time.time()))
    if kill:
        await asyncio.to_thread(stack.temporal.start_blocking)
        stack.disruptions.append(Disruption("temporal", began, time.time() + 4))
    else:
        stack.resume_temporal()
    back = time.monotonic()
    await wait_all(stack.url, before, timeout=300)
    report.recovery = time.monotonic() - back
    # A refused start may still have reached Temporal (it was sent, the answer timed out): what a
    # client does after a 503 is send it again with the same id, which starts it at most once.
    retried = await submit_all(stack.url, stack.group, stack.ledger_dir, [(str(b["id"]), MIXED[0]) for b in bodies])
    await wait_all(stack.url, retried, timeout=300)
    before.ids.update(retried.ids)
    before.statuses.update(retried.statuses)
    return report
