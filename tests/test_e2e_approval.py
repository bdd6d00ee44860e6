"""An approval gate survives `kill -9` of the whole dev stack and continues on `waterflow signal`.

`waterflow dev` (embedded Temporal with its SQLite file, the API server with the interpreter
worker, the local agent) runs a workflow: a step, a `flow/approval` gate, a step that reads the
answer's data. While the gate waits, every process of the stack gets SIGKILL; `waterflow dev`
starts again on the same data directory and ports. The run still waits at its gate (the API
shows what for); `waterflow signal` run as a real subprocess first gets a clear refusal for a
signal the run does not wait for, then approves with typed data, and the run finishes: each
step ran once and the step after the gate saw the data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from waterflow_sdk import Client

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the dev-stack helper is a sibling module
from test_e2e_flow_sleep import Dev

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def waiting_gate(url: str, run_id: str, timeout: float = 60) -> dict[str, Any]:
    """The gate's ``waiting`` as ``GET /v1/workflows/{id}`` shows it, once it waits."""
    deadline = time.monotonic() + timeout
    while True:
        run = httpx.get(f"{url}/v1/workflows/{run_id}", timeout=30).json()
        for job in run.get("jobs", []):
            for step in job["steps"]:
                if step.get("waiting"):
                    return dict(step["waiting"])
        assert time.monotonic() < deadline, f"the gate never waited: {run}"
        time.sleep(0.2)


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WATERFLOW_SERVER": url}
    return subprocess.run(
        [sys.executable, "-m", "waterflow_sdk", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_an_approval_gate_survives_kill_9_and_continues_on_waterflow_signal(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    workflow = textwrap.dedent(
        """
        name: durable-approval
        inputs:
          dir: {type: string, required: true}
        jobs:
          release:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {command: 'date +%s.%N >> "$<< inputs.dir >>/before"'}
              - id: go
                uses: flow/approval
                with:
                  timeout: 1h
                  message: Release to production?
                  inputs:
                    ticket: {type: string, required: true}
              - uses: exec/shell
                with: {command: 'echo "$<< steps.go.outputs.data.ticket >>" >> "$<< inputs.dir >>/after"'}
        """
    )
    dev = Dev(tmp_path / "data", tmp_path / "dev.log")
    try:
        dev.start()
        with Client(dev.url) as client:
            ref = client.submit(workflow, inputs={"dir": str(marks)})
        before_kill = waiting_gate(dev.url, ref.id)
        assert before_kill["signal"] == "go" and before_kill["message"] == "Release to production?"
        killed = dev.kill_everything()
        assert len(killed) >= 3  # waterflow dev, Temporal, the agent
        assert not (marks / "after").exists()

        dev.start()  # same data directory, same ports
        after_restart = waiting_gate(dev.url, ref.id)
        assert after_restart == before_kill  # the same gate, same deadline: it was not started over

        wrong = cli(dev.url, "signal", ref.id, "deploy", "--data", '{"ticket": "T-7"}')
        assert wrong.returncode == 1
        assert "is not waiting for signal 'deploy'; it waits for: 'go' (step release/go)" in wrong.stderr
        assert "Traceback" not in wrong.stderr
        missing = cli(dev.url, "signal", ref.id, "go")
        assert missing.returncode == 1 and "data.ticket: required to approve" in missing.stderr

        data = tmp_path / "answer.json"
        data.write_text(json.dumps({"ticket": "T-7"}))
        approved = cli(dev.url, "signal", ref.id, "go", "--data", f"@{data}")
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.strip() == f"approved release/go of {ref.id} (signal go)"

        with Client(dev.url) as client:
            run = client.wait(ref.id, timeout=120, poll=0.5)
        assert run.succeeded, run.error
        assert len((marks / "before").read_text().split()) == 1  # ran once, not again after the restart
        assert (marks / "after").read_text().split() == ["T-7"]
        gate = next(s for _, s in run.steps() if s.id == "go")
        assert gate.outputs["decision"] == "approved" and gate.outputs["data"] == {"ticket": "T-7"}
    finally:
        dev.stop()
