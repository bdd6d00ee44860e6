"""Hot reload latency: ``pip install`` of a node package finished → the node is usable on a live agent.

Budget (DESIGN.md, "Performance budget"): node hot reload visible ≤ 3 s after ``pip install``
finishes.

Everything runs on 127.0.0.1 in a temp dir: an embedded Temporal (``DevServer``, headless), a
venv the agents run in (it sees the workspace packages through a ``.pth`` that calls
``site.addsitedir`` on this interpreter's site-packages, so its own ``site-packages`` holds only
what the benchmark installs), and two real agent processes (``<venv>/bin/python -m
waterflow_agent``) on that venv, side by side:

* ``watcher``: default options (inotify watcher, 30 s safety-net poll).
* ``poll 1s``: the baseline, ``--no-reload-watch --reload-poll-interval 1s`` (what the agent did
  before ADR 0014: look every second).
* ``no inotify``: default options, started in a user namespace whose inotify instance limit is 0
  (``unshare``), as an agent past the per-user limit on a crowded host: it falls back to checking
  the plugin directories' modification times every second (ADR 0045). Skipped when user
  namespaces are not available.

Each round builds a wheel of a tiny node package (``bench/echo``, laid out by the tests'
``write_node_package`` and zipped with ``WHEEL`` and ``RECORD``) with the next version, installs
it into the venv's ``site-packages`` with a real installer (``pip install --no-deps --no-index``,
or ``uv pip install``), an upgrade from the second round on, and notes the time the installer
process exited. The node counts as usable when an agent swaps in the registry generation whose
catalog has ``bench/echo@<that version>``: the agent logs that line (with a millisecond timestamp,
same clock) right after the swap, and the next step it runs uses that generation. Latency = log
timestamp − installer exit; it can be negative when the agent saw the install complete before
the installer itself had exited.

Rows follow ``bench/_report.py`` (``--json PATH`` for ``bench/run_all.py``; ``--quick``: 5 rounds);
exit status 1 when the watcher's P95 misses the budget only with ``--strict``.

Run: ``python bench/bench_reload.py [--rounds N] [--installer pip|uv]`` (default 20 rounds, ~1 min).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import random
import re
import shutil
import site
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import Row, print_table, write_json

BUDGET_S = 3.0
DISTRIBUTION = "wf-bench-nodes"
MODULE = "wf_bench_nodes"
NODE_SOURCE = '''
from pydantic import BaseModel
from waterflow_core import Node, NodeContext, hookimpl

class Echo(Node):
    type = "bench/echo"
    version = "{version}"
    class Inputs(BaseModel):
        message: str = ""
    class Outputs(BaseModel):
        message: str
    async def run(self, ctx: NodeContext, inputs):
        return self.Outputs(message=inputs.message)

@hookimpl
def waterflow_register_nodes():
    return [Echo]
'''
AGENTS = {
    "watcher": [],
    "poll 1s": ["--no-reload-watch", "--reload-poll-interval", "1s"],
    "no inotify": [],
}
LABELS = {
    "watcher": "watcher (inotify + 30 s safety-net poll)",
    "poll 1s": "baseline: poll only, every 1 s",
    "no inotify": "no inotify left: mtime check every 1 s",
}
# Runs a command in a new user namespace whose inotify instance limit is 0.
NO_INOTIFY = ["unshare", "--user", "--map-root-user", "sh", "-c",
              'echo 0 > /proc/sys/user/max_inotify_instances && exec "$@"', "no-inotify"]  # fmt: skip
SWAP_LINE = re.compile(r"^(\S+ \S+) INFO waterflow_agent\.reloader: node registry generation \d+: (.*)$", re.MULTILINE)


def load_average() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: a reported p95 is a latency that happened)."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def build_wheel(stage: Path, out_dir: Path, version: str) -> Path:
    """A wheel of the bench node package at ``version``: the installed layout, zipped."""
    from waterflow_testing import write_node_package

    source = NODE_SOURCE.format(version=version)
    root = write_node_package(stage / version, DISTRIBUTION, MODULE, source, version=version)
    dist_info = f"{MODULE}-{version}.dist-info"
    (root / dist_info / "WHEEL").write_text(
        "Wheel-Version: 1.0\nGenerator: bench_reload\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files = sorted(p for p in root.rglob("*") if p.is_file())
    record = []
    for path in files:
        data = path.read_bytes()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path.relative_to(root).as_posix()},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    (root / dist_info / "RECORD").write_text("\n".join(record) + "\n")
    wheel = out_dir / f"{MODULE}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        # Module first, dist-info last: the order the wheel spec recommends and pip extracts in.
        for path in [*files, root / dist_info / "RECORD"]:
            zf.write(path, path.relative_to(root).as_posix())
    return wheel


def make_venv(path: Path, installer: str) -> tuple[Path, Path]:
    """A venv whose own site-packages starts empty and which imports the workspace; (python, purelib)."""
    command = [sys.executable, "-m", "venv", str(path)]
    if installer != "pip":
        command.append("--without-pip")
    subprocess.run(command, check=True)
    python = path / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    # addsitedir (not a plain path line) so the workspace's editable-install .pth files run too.
    lines = [f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()]
    (purelib / "_bench_workspace.pth").write_text("\n".join(lines) + "\n")
    return python, purelib


def install_command(installer: str, python: Path, wheel: Path) -> list[str]:
    if installer == "pip":
        return [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
                "--quiet", str(wheel)]  # fmt: skip
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    return [uv, "pip", "install", "--python", str(python), "--no-deps", "--offline", "--quiet", str(wheel)]


def swap_time(log_text: str, version: str) -> float | None:
    """When the agent logged a generation that serves ``bench/echo@version`` (epoch seconds)."""
    for match in SWAP_LINE.finditer(log_text):
        if f"bench/echo@{version}" in match[2].split(", "):
            return datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


async def wait_for(log_file: Path, offset: int, pattern: str, timeout: float) -> None:
    from waterflow_testing.processes import read_log

    deadline = time.monotonic() + timeout
    while not re.search(pattern, read_log(log_file, offset)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{pattern!r} not in {log_file} within {timeout:.0f}s:\n"
                               f"{read_log(log_file, offset)[-3000:]}")  # fmt: skip
        await asyncio.sleep(0.05)


async def bench(a: argparse.Namespace) -> int:
    from waterflow_agent.command import agent_argv
    from waterflow_testing.devserver import DevServer
    from waterflow_testing.processes import read_log, spawn_logged, stop_process

    load_before = load_average()
    print(f"load average before: {load_before} (1/5/15 min)", flush=True)
    t_setup = time.perf_counter()
    kinds = {name: extra for name, extra in AGENTS.items() if name != "no inotify" or user_namespaces()}
    if "no inotify" not in kinds:
        print("user namespaces unavailable: no 'no inotify' agent", flush=True)
    samples: dict[str, list[float]] = {name: [] for name in kinds}
    install_seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="waterflow-bench-") as tmp:
        tmpdir = Path(tmp)
        python, purelib = make_venv(tmpdir / "venv", a.installer)
        wheels = tmpdir / "wheels"
        wheels.mkdir()
        server = DevServer(tmpdir / "temporal", headless=True)
        await server.start()
        agents: dict[str, tuple[subprocess.Popen[bytes], Path, int]] = {}
        try:
            for i, (name, extra) in enumerate(kinds.items()):
                argv = agent_argv(
                    f"bench-reload-{i}-{os.getpid()}",
                    [f"bench-reload-{i}-{os.getpid()}"],
                    temporal_address=server.address,
                    namespace=server.namespace,
                    workdir=tmpdir / f"agent{i}",
                    args=extra,
                )
                log_file = tmpdir / f"agent{i}.log"
                prefix = NO_INOTIFY if name == "no inotify" else []
                process, offset = spawn_logged([*prefix, str(python), *argv[1:]], log_file, cwd=tmpdir)
                agents[name] = (process, log_file, offset)
            for _, log_file, offset in agents.values():
                await wait_for(log_file, offset, r"\bready\b", 60.0)
            print(f"setup: {time.perf_counter() - t_setup:.1f}s (Temporal {server.address}, venv {purelib})",
                  flush=True)  # fmt: skip

            t_bench = time.perf_counter()
            for k in range(-a.warmup, a.rounds):
                version = f"1.0.{k + a.warmup}"
                wheel = build_wheel(tmpdir / "stage", wheels, version)
                # A random pause so installs land at every phase of the baseline's poll.
                await asyncio.sleep(random.uniform(0, a.pause))
                started = time.time()
                proc = await asyncio.create_subprocess_exec(*install_command(a.installer, python, wheel))
                if await proc.wait() != 0:
                    raise RuntimeError(f"installing {wheel.name} failed")
                finished = time.time()
                seen: dict[str, float] = {}
                deadline = time.monotonic() + a.timeout
                while len(seen) < len(agents):
                    for name, (_, log_file, offset) in agents.items():
                        if name not in seen and (when := swap_time(read_log(log_file, offset), version)):
                            seen[name] = when
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"version {version} not picked up within {a.timeout:.0f}s by "
                                           f"{sorted(set(agents) - set(seen))}")  # fmt: skip
                    await asyncio.sleep(0.05)
                if k >= 0:
                    install_seconds.append(finished - started)
                    for name, when in seen.items():
                        samples[name].append(when - finished)
                if a.verbose:
                    print(f"round {k:>3} {version}: install {finished - started:.2f}s, "
                          + ", ".join(f"{n} {(w - finished) * 1000:.0f} ms" for n, w in seen.items()), flush=True)
            bench_seconds = time.perf_counter() - t_bench
            load_after = load_average()
        finally:
            for process, _, _ in agents.values():
                await stop_process(process, 15.0)
            await server.stop()

    print()
    print(f"install finished → node usable on the agent, {a.rounds} rounds after {a.warmup} warm-up "
          f"({a.installer} install of a wheel, an upgrade each round)")  # fmt: skip
    header = f"{'agent':<42} {'p50':>8} {'p95':>8} {'mean':>8} {'min':>8} {'max':>8}"
    print(header)
    print("-" * len(header))
    for name, values in samples.items():
        print(
            f"{LABELS[name]:<42} {percentile(values, 50) * 1000:>6.0f}ms {percentile(values, 95) * 1000:>6.0f}ms "
            f"{statistics.fmean(values) * 1000:>6.0f}ms {min(values) * 1000:>6.0f}ms {max(values) * 1000:>6.0f}ms"
        )
    print("-" * len(header))
    print(f"{a.installer} install itself: median {statistics.median(install_seconds):.2f}s")
    print(f"timed part: {bench_seconds:.1f}s; load average after: {load_after} (1/5/15 min)")
    p95 = percentile(samples["watcher"], 95)
    ok = p95 <= BUDGET_S
    verdict = "met" if ok else "MISSED"
    print(f"budget hot reload ≤ {BUDGET_S:.0f} s after install (watcher P95): {verdict} ({p95:.2f} s)")
    rows = report_rows(samples)
    print()
    print_table(rows)
    if a.json:
        notes = {"installer": a.installer, "install_median_s": statistics.median(install_seconds)}
        write_json(a.json, "reload", rows, load_average_before=load_before, notes=notes)
    return 0 if ok or not a.strict else 1


def report_rows(samples: dict[str, list[float]]) -> list[Row]:
    """The watcher's (and, when it ran, the no-inotify agent's) latency beside the 1 s poll, in ms."""
    base = [v * 1000 for v in samples["poll 1s"]]
    rows = []
    for name in ("watcher", "no inotify"):
        if name not in samples:
            continue
        mine = [v * 1000 for v in samples[name]]
        p95 = percentile(mine, 95)
        rows.append(
            Row(
                "reload",
                f"install finished → node usable ({LABELS[name]})",
                "ms",
                statistics.median(mine),
                p95,
                baseline=LABELS["poll 1s"],
                baseline_median=statistics.median(base),
                baseline_p95=percentile(base, 95),
                ratio_of="p95",
                goal=f"P95 ≤ {BUDGET_S * 1000:.0f} ms",
                met=p95 <= BUDGET_S * 1000,
                samples=len(mine),
            )
        )
    return rows


def user_namespaces() -> bool:
    """Whether this machine lets us run an agent with an inotify limit of its own (``unshare``)."""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run([*NO_INOTIFY, "true"], check=False, capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="timed installs (default 20)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed installs first (default 1)")
    parser.add_argument("--installer", choices=["pip", "uv"], default="pip", help="installer (default pip)")
    parser.add_argument("--pause", type=float, default=1.0,
                        help="up to this many seconds (random) before each install (default 1)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=60.0, help="liveness bound per round, seconds")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every round")
    parser.add_argument("--quick", action="store_true", help="5 rounds (for bench/run_all.py --quick)")
    parser.add_argument("--json", metavar="PATH", help="write the rows as JSON (for bench/run_all.py)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the watcher's P95 misses the budget")
    args = parser.parse_args()
    if args.quick:
        args.rounds = min(args.rounds, 5)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
