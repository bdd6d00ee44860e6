"""`waterflow dev` keeps no secret in its environment, where its agent's steps could read it.

A real `waterflow dev` (embedded Temporal, API server, local agent) is started with
`WATERFLOW_SECRET_TOKEN` in its environment. A step reads the initial environment
(`/proc/<pid>/environ`) of each of its ancestors, the dev process among them, and finds the value
in none, while a step referencing the secret still gets it: the dev process handed it to its
agent without an environment variable (docs/concepts/security.md, Agent isolation).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow_sdk import Client
from waterflow_testing.devserver import free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SECRET = f"dev-s3cret-{uuid.uuid4().hex}"
READY_TIMEOUT = 180.0  # a loaded machine: Temporal, the API and the agent start, dev once more

WORKFLOW = """
name: dev-environ
inputs:
  dir: {type: string, required: true}
jobs:
  read:
    runs-on: local
    steps:
      - id: ancestors
        uses: exec/shell
        env: {DIR: $<< inputs.dir >>}
        with:
          # Into files the test reads directly: no masking in between.
          command: |
            pid=$$
            while [ "$pid" -gt 1 ]; do
              echo "$pid" >> "$DIR/pids"
              cat /proc/$pid/environ 2>/dev/null | tr '\\0' '\\n'
              pid=$(awk '/^PPid:/ {print $2}' /proc/$pid/status)
            done > "$DIR/ancestors"
            env > "$DIR/env"
      - id: resolve
        uses: exec/shell
        env: {T: $<< secrets.token >>}
        with:
          command: echo "sha=$(printf '%s' "$T" | sha256sum | cut -d' ' -f1)" >> "$WATERFLOW_OUTPUT"
"""


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    log = tmp_path / "dev.log"
    command = [
        sys.executable, "-m", "waterflow_sdk", "dev", "--data-dir", str(tmp_path / "data"),
        "--port", str(port), "--temporal-port", str(free_port()), "--headless",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WATERFLOW_SECRET_TOKEN": SECRET}
    env.pop("WATERFLOW_TEMPORAL_ADDRESS", None)
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not re.search(r"^ready\b", log.read_text(errors="replace"), re.M):
            assert process.poll() is None, f"waterflow dev exited:\n{log.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"waterflow dev not ready:\n{log.read_text(errors='replace')}"
            time.sleep(0.1)
        yield process, f"http://127.0.0.1:{port}", log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_steps_of_the_dev_agent_cannot_read_secrets_from_waterflow_dev(
    dev: tuple[subprocess.Popen[bytes], str, Path], tmp_path: Path
) -> None:
    process, url, log = dev
    out = tmp_path / "seen"
    out.mkdir()
    with Client(url) as client:
        run = client.wait(client.submit(textwrap.dedent(WORKFLOW), inputs={"dir": str(out)}).id, timeout=180, poll=0.2)
    assert run.succeeded, run.error

    pids = [int(line) for line in (out / "pids").read_text().split()]
    assert process.pid in pids  # the dev process really is an ancestor of the step
    for name in ("ancestors", "env"):
        seen = (out / name).read_text()
        assert "PATH=" in seen  # the environments really were read
        assert SECRET not in seen and "WATERFLOW_SECRET_TOKEN" not in seen, name
    # Re-executed in place: same pid, same arguments (plus -P), no secret at start.
    cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[:5] == [sys.executable.encode(), b"-P", b"-m", b"waterflow_sdk", b"dev"]
    assert SECRET.encode() not in Path(f"/proc/{process.pid}/environ").read_bytes()
    # The agent still resolves the secret, handed over by the dev process.
    steps = {step.id: step for _, step in run.steps()}
    assert steps["resolve"].outputs["sha"] == hashlib.sha256(SECRET.encode()).hexdigest()
    assert SECRET not in log.read_text(errors="replace")
