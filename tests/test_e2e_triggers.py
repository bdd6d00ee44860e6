"""Triggers on the dev stack (issue 14, ADR 0037): a schedule fires on time and survives a restart;
an inbound webhook with a bad HMAC is refused, a good one starts a run with the mapped inputs.

`waterflow dev --hooks FILE` (embedded Temporal on SQLite, the API with the interpreter worker,
the local agent) gets a schedule every 3 s whose step, on the local agent, appends to a file, and
a cron schedule whose next fire time is checked. The stack is stopped and started again on the
same data directory: the schedule (kept by Temporal, nothing in Waterflow's processes) fires
again. Webhook deliveries are signed as GitHub signs them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from waterflow_sdk import Client
from waterflow_testing.devserver import free_port

READY_TIMEOUT = 120.0
EVERY = 3
SECRET = "hook-secret-" + "z" * 20

pytestmark = pytest.mark.e2e


class Dev:
    """`waterflow dev` as a child process on fixed ports, its output appended to a file."""

    def __init__(self, data_dir: Path, log: Path, args: list[str]) -> None:
        self.data_dir, self.log, self.args = data_dir, log, args
        self.port, self.temporal_port = free_port(), free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "waterflow_sdk",
            "dev",
            "--data-dir",
            str(self.data_dir),
            "--headless",
            "--port",
            str(self.port),
            "--temporal-port",
            str(self.temporal_port),
            *self.args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("WATERFLOW_TEMPORAL_ADDRESS", None)
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while not re.search(r"^ready\b", self.log.read_bytes()[offset:].decode(errors="replace"), re.M):
            assert self.process.poll() is None, f"waterflow dev exited:\n{self.log.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"waterflow dev not ready:\n{self.log.read_text(errors='replace')}"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def ticks(marks: Path) -> list[float]:
    path = marks / "ticks"
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def wait_for_ticks(marks: Path, count: int, timeout: float = 60) -> list[float]:
    deadline = time.monotonic() + timeout
    while len(found := ticks(marks)) < count:
        assert time.monotonic() < deadline, f"only {len(found)} of {count} scheduled runs wrote their mark"
        time.sleep(0.2)
    return found


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_schedules_fire_and_survive_a_restart_and_webhooks_start_mapped_runs(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    ticker = textwrap.dedent(
        """
        name: ticker
        inputs:
          dir: {type: string, required: true}
        jobs:
          tick:
            runs-on: local
            steps:
              - uses: exec/shell
                with: {command: 'date +%s.%N >> "$<< inputs.dir >>/ticks"'}
        """
    )
    (tmp_path / "deploy.yaml").write_text(
        textwrap.dedent(
            """
            name: deploy-on-push
            inputs:
              ref: {type: string, required: true}
              commits: {type: number, required: true}
            jobs:
              deploy:
                runs-on: local
                steps:
                  - uses: exec/shell
                    with: {command: 'echo deploying'}
            """
        )
    )
    secret_file = tmp_path / "push.secret"
    secret_file.write_text(SECRET)
    secret_file.chmod(0o600)
    (tmp_path / "hooks.yaml").write_text(
        textwrap.dedent(
            """
            hooks:
              push:
                workflow: deploy.yaml
                secret-file: push.secret
                inputs:
                  ref: $<< payload.ref >>
                  commits: $<< payload.size >>
                id: push-$<< headers.x-github-delivery >>
            """
        )
    )
    dev = Dev(tmp_path / "data", tmp_path / "dev.log", ["--hooks", str(tmp_path / "hooks.yaml")])
    try:
        dev.start()
        with Client(dev.url) as client:
            ticking = client.create_schedule(ticker, interval=f"{EVERY}s", inputs={"dir": str(marks)}, id="ticker")
            assert ticking.interval_seconds == EVERY and ticking.overlap == "skip"
            cron = client.create_schedule(ticker, cron="*/5 * * * *", inputs={"dir": str(tmp_path)}, id="five-minutely")
            upcoming = cron.next_runs[0]
            assert upcoming.minute % 5 == 0 and upcoming.second == 0
            assert datetime.now(UTC) < upcoming <= datetime.now(UTC) + timedelta(minutes=5)

            before = wait_for_ticks(marks, 2)
            fired = client.get_schedule("ticker")
            assert fired.runs_started is not None and fired.runs_started >= 2
            for run in fired.recent_runs:
                assert run.id.startswith("ticker-")
                assert (run.started_at - run.scheduled_at).total_seconds() < EVERY  # on time
                assert client.get(run.id).inputs == {"dir": str(marks)}

        dev.stop()
        stopped_at = time.time()
        count = len(ticks(marks))
        dev.start()  # the same data directory and ports
        after = wait_for_ticks(marks, count + 2)
        assert after[-1] > stopped_at and len(before) >= 2
        with Client(dev.url) as client:
            again = client.get_schedule("ticker")
            assert again.recent_runs[-1].scheduled_at.timestamp() > stopped_at
            client.delete_schedule("ticker")
            client.delete_schedule("five-minutely")

        with httpx.Client(base_url=dev.url, timeout=30) as http:
            delivery = uuid.uuid4().hex
            body = json.dumps({"ref": "refs/heads/main", "size": 2}).encode()
            headers = {"content-type": "application/json", "x-github-delivery": delivery}
            forged = http.post(
                "/v1/hooks/push", content=body, headers={**headers, "x-hub-signature-256": signed(body, "w" * 32)}
            )
            assert forged.status_code == 401
            assert http.get(f"/v1/workflows/push-{delivery}").status_code == 404  # no run started

            good = http.post("/v1/hooks/push", content=body, headers={**headers, "x-hub-signature-256": signed(body)})
            assert good.status_code == 202, good.text
            run_id = good.json()["id"]
            assert run_id == f"push-{delivery}"
            replay = http.post("/v1/hooks/push", content=body, headers={**headers, "x-hub-signature-256": signed(body)})
            assert replay.status_code == 200 and replay.json() == {**good.json(), "created": False}
        with Client(dev.url) as client:
            run = client.wait(run_id, timeout=120, poll=0.5)
            assert run.succeeded, run.error
            assert run.inputs == {"ref": "refs/heads/main", "commits": 2}
            same = [r for r in client.list_runs(name="deploy-on-push", page_size=100).runs if r.id == run_id]
            assert len(same) == 1  # the replay started no second run
    finally:
        dev.stop()
