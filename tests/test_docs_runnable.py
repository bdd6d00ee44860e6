"""The commands the docs tell a user to run do what the docs say, against a real stack.

A fenced block is marked by an HTML comment on the line right before it (docs/README.md,
"Runnable blocks"):

- ``<!-- run -->``: a shell block; every line runs (``bash -eo pipefail``) and must exit 0;
- ``<!-- run: fails -->``: the same, but the block must exit non-zero (a failure it shows);
- ``<!-- run: background -->``: each line is a long-running command (an agent), started in the
  background; it must print ``ready``; it is stopped when the page is done;
- ``<!-- run: stack -->``: ``waterflow dev``; the test's own ``waterflow dev`` stands for it;
- ``<!-- output -->``: a block whose every line must appear in the output of the last run block;
- ``<!-- save: NAME -->``: the block is written to the file NAME (the page says "save this as");
- ``<!-- same as: PATH -->``: the block is the repository file PATH, word for word;
- ``<!-- not run: REASON -->``: a command that cannot run here (installing on another machine).

Every shell block of docs/getting-started/ carries one of these. Blocks run in the page's order,
in a fresh directory holding ``examples/``, against one ``waterflow dev`` on free ports: the
ports ``8080`` (API) and ``7233`` (Temporal) in a block are replaced by the stack's.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from waterflow_testing.devserver import free_port

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SHELL_LANGUAGES = {"sh", "bash", "console", "shell"}
MARKER = re.compile(r"<!--\s*(?P<kind>run|not run|output|save|same as)\s*(?::\s*(?P<arg>.*?))?\s*-->")
RUN_MODES = {None, "fails", "background", "stack"}
READY_TIMEOUT = 180.0
BLOCK_TIMEOUT = 300.0


@dataclass
class Block:
    """A fenced block of a page and the marker before it (``kind`` None: unmarked)."""

    page: Path
    line: int
    language: str
    text: str
    kind: str | None
    arg: str | None

    @property
    def where(self) -> str:
        return f"{rel(self.page)}:{self.line}"


def rel(page: Path) -> str:
    return str(page.relative_to(REPO)) if page.is_relative_to(REPO) else str(page)


def blocks_of(page: Path) -> list[Block]:
    """The page's fenced blocks, each with the marker on the line before its fence."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    start: int | None = None
    for number, text in enumerate(lines, 1):
        if start is None and text.startswith("```"):
            start = number
        elif start is not None and text.startswith("```"):
            fence = lines[start - 1][3:].strip()
            before = lines[start - 2].strip() if start >= 2 else ""
            marker = MARKER.fullmatch(before)
            found.append(
                Block(
                    page,
                    start,
                    fence.split()[0] if fence else "",
                    "\n".join(lines[start:number - 1]) + "\n",
                    marker["kind"] if marker else None,
                    marker["arg"] if marker else None,
                )
            )
            start = None
    return found


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def marker_problems(page: Path, tutorial: bool | None = None) -> list[str]:
    """What is wrong with the page's markers; ``tutorial``: every shell block must be marked
    (default: the page is under docs/getting-started/)."""
    problems = []
    text = page.read_text(encoding="utf-8")
    blocks = blocks_of(page)
    marked = {b.line - 1 for b in blocks if b.kind}
    for number, line in enumerate(text.splitlines(), 1):
        if MARKER.fullmatch(line.strip()) and number not in marked:
            problems.append(f"{rel(page)}:{number}: a marker must be the line right before a fence")
    getting_started = DOCS / "getting-started" in page.parents if tutorial is None else tutorial
    for block in blocks:
        if block.kind is None:
            if getting_started and block.language in SHELL_LANGUAGES:
                problems.append(f"{block.where}: mark this shell block <!-- run --> or <!-- not run: REASON -->")
        elif block.kind == "run" and block.arg not in RUN_MODES:
            problems.append(f"{block.where}: unknown run mode {block.arg!r} (one of: fails, background, stack)")
        elif block.kind == "run" and block.language not in SHELL_LANGUAGES:
            problems.append(f"{block.where}: only shell blocks run, this one is ```{block.language}")
        elif block.kind == "run" and block.arg == "stack" and block.text.strip() != "waterflow dev":
            problems.append(f"{block.where}: <!-- run: stack --> stands for exactly `waterflow dev`")
        elif block.kind == "not run" and not block.arg:
            problems.append(f"{block.where}: say why the block is not run: <!-- not run: REASON -->")
        elif block.kind == "save" and (not block.arg or "/" in block.arg):
            problems.append(f"{block.where}: <!-- save: NAME --> names a file in the working directory")
        elif block.kind == "same as":
            source = REPO / (block.arg or "")
            if not source.is_file():
                problems.append(f"{block.where}: <!-- same as: {block.arg} --> names no file of the repository")
            elif source.read_text(encoding="utf-8") != block.text:
                problems.append(f"{block.where}: differs from {block.arg}: copy the file into the block again")
    return problems


@pytest.mark.unit
def test_runnable_markers_are_well_formed() -> None:
    problems = [problem for page in pages() for problem in marker_problems(page)]
    assert not problems, "\n".join(problems)


@pytest.mark.unit
def test_the_marker_check_reports_mistakes(tmp_path: Path) -> None:
    page = tmp_path / "zz-probe.md"
    page.write_text(
        "```sh\nwaterflow list\n```\n\n<!-- run: later -->\n```sh\ntrue\n```\n\n"
        "<!-- same as: examples/hello.yaml -->\n```yaml\nname: other\n```\n\n<!-- not run -->\n```sh\nx\n```\n"
        "\n<!-- run -->\n\n```sh\ntrue\n```\n",
        encoding="utf-8",
    )
    report = "\n".join(marker_problems(page, tutorial=True))
    for expected in (
        "zz-probe.md:1: mark this shell block",
        "zz-probe.md:6: unknown run mode 'later'",
        "zz-probe.md:11: differs from examples/hello.yaml",
        "zz-probe.md:16: say why the block is not run",
        "zz-probe.md:20: a marker must be the line right before a fence",
    ):
        assert expected in report, f"{expected!r} not in:\n{report}"


# -- running them -------------------------------------------------------------------------------


def runnable_pages() -> list[Path]:
    """Pages with blocks to run, the tutorials first, in reading order."""
    first = [DOCS / "getting-started" / "index.md", DOCS / "getting-started" / "first-multi-server-workflow.md"]
    rest = [p for p in pages() if p not in first]
    return [p for p in [*first, *rest] if p.exists() and any(b.kind == "run" for b in blocks_of(p))]


class Stack:
    """`waterflow dev` on free 127.0.0.1 ports, as the tutorials start it."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port, self.temporal_port = free_port(), free_port()
        self.log = log
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for name in ("WATERFLOW_TEMPORAL_ADDRESS", "WATERFLOW_API_TOKEN", "WATERFLOW_CONFIG", "WATERFLOW_SERVER"):
            env.pop(name, None)
        command = [sys.executable, "-m", "waterflow_sdk", "dev", "--data-dir", str(data_dir), "--headless"]
        command += ["--port", str(self.port), "--temporal-port", str(self.temporal_port)]
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        wait_for_ready(self.process, log, "waterflow dev")

    def stop(self) -> None:
        stop(self.process)


def wait_for_ready(process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not re.search(r"\bready\b", log.read_text(errors="replace")):
        output = log.read_text(errors="replace")
        assert process.poll() is None, f"{what} exited with {process.returncode}:\n{output}"
        assert time.monotonic() < deadline, f"{what}: no 'ready' within {READY_TIMEOUT:.0f}s:\n{output}"
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(90)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("docs-stack")
    running = Stack(root / "data", root / "dev.log")
    yield running
    running.stop()


def localize(text: str, stack: Stack) -> str:
    """A block's text pointed at the test's stack instead of `waterflow dev`'s default ports."""
    text = re.sub(r"\b8080\b", str(stack.port), text)
    return re.sub(r"\b7233\b", str(stack.temporal_port), text)


@pytest.mark.e2e
@pytest.mark.parametrize("page", runnable_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_runnable_blocks_do_what_the_page_says(page: Path, stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    for name in ("WATERFLOW_API_TOKEN", "WATERFLOW_CONFIG"):
        env.pop(name, None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["WATERFLOW_SERVER"] = f"http://127.0.0.1:{stack.port}"
    env["WATERFLOW_TEMPORAL_ADDRESS"] = f"127.0.0.1:{stack.temporal_port}"
    background: list[subprocess.Popen[bytes]] = []
    last_output = ""
    ran = 0
    try:
        for block in blocks_of(page):
            text = localize(block.text, stack)
            if block.kind == "save":
                (tmp_path / str(block.arg)).write_text(block.text, encoding="utf-8")
            elif block.kind == "output":
                missing = [line.strip() for line in text.splitlines() if line.strip() not in last_output]
                assert not missing, f"{block.where}: the page shows {missing}, the command printed:\n{last_output}"
            elif block.kind == "run" and block.arg == "background":
                for number, command in enumerate(commands(text)):
                    log = tmp_path / f"background-{block.line}-{number}.log"
                    with log.open("ab") as out:
                        process = subprocess.Popen(
                            ["bash", "-c", f"exec {command}"], cwd=tmp_path, env=env,
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        )  # fmt: skip
                    background.append(process)
                    wait_for_ready(process, log, f"{block.where}: {command}")
                ran += 1
            elif block.kind == "run" and block.arg != "stack":
                result = subprocess.run(
                    ["bash", "-eo", "pipefail", "-c", text], cwd=tmp_path, env=env,
                    capture_output=True, text=True, timeout=BLOCK_TIMEOUT, check=False,
                )  # fmt: skip
                last_output = result.stdout + result.stderr
                failed = result.returncode != 0
                assert failed == (block.arg == "fails"), (
                    f"{block.where}: exit status {result.returncode}, the page expects "
                    f"{'a failure' if block.arg == 'fails' else 'success'}:\n{text}\n{last_output}"
                )
                assert "Traceback" not in last_output, f"{block.where}:\n{last_output}"
                ran += 1
    finally:
        for process in background:
            stop(process)
    assert ran, f"{page}: no block ran"


def commands(text: str) -> list[str]:
    """The command lines of a block (comments and blank lines left out)."""
    lines = (raw.split(" #")[0].strip() for raw in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]
