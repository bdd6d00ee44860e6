"""The per-step path of the agent (ADR 0043): when a step heartbeats, how its process exits are seen.

The executor runs the real ``exec/shell`` node (real processes) in Temporal's activity test
environment on the agent's own event loop, which records every heartbeat the step sends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.common import RawValue
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment

from waterflow_agent.envsecrets import serve_taken
from waterflow_agent.executor import AgentIdentity, StepExecutor
from waterflow_agent.reloader import RegistryHolder
from waterflow_agent.runsecrets import RunSecrets
from waterflow_agent.steploop import loop_factory
from waterflow_agent.stepprocs import StepProcesses
from waterflow_core.steptask import StepResult, StepTask


class _NoSecrets:
    async def get_many(self, names: list[str]) -> dict[str, str]:
        return {}


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[StepProcesses]:
    procs = StepProcesses(tmp_path)
    procs.open()
    yield procs
    procs.close()


def _run_step(
    processes: StepProcesses,
    workdir: Path,
    command: str,
    *,
    heartbeat_timeout: timedelta = timedelta(seconds=30),
    earlier: list[Any] | None = None,
) -> tuple[StepResult, list[dict[str, Any]]]:
    """Run one ``exec/shell`` step; returns its result and the heartbeats it sent."""

    async def run() -> tuple[StepResult, list[dict[str, Any]]]:
        executor = StepExecutor(
            AgentIdentity("a1", ["g"], {}, workdir),
            await RegistryHolder.load(),
            serve_taken(_NoSecrets(), {}),  # type: ignore[arg-type]
            RunSecrets(timedelta(hours=1)),
            processes,
        )
        task = StepTask(
            workflow_id="wf", job="main", step="s1", name="s1", node="exec/shell",
            with_={"command": command}, env={}, contexts={}, status="success",
        )  # fmt: skip
        env = ActivityEnvironment()
        env.payload_converter = pydantic_data_converter.payload_converter
        env.info = dataclasses.replace(
            env.info,
            activity_type="exec/shell",
            heartbeat_timeout=heartbeat_timeout,
            heartbeat_details=list(earlier or []),
            attempt=2 if earlier else 1,
        )
        beats: list[dict[str, Any]] = []
        env.on_heartbeat = lambda *details: beats.append(details[-1])
        payload = pydantic_data_converter.payload_converter.to_payloads([task])[0]
        result = await env.run(executor.execute, [RawValue(payload)])
        return result, beats

    with asyncio.Runner(loop_factory=loop_factory(None)) as runner:
        return runner.run(run())


def test_a_short_first_attempt_sends_no_heartbeat(processes: StepProcesses, tmp_path: Path) -> None:
    result, beats = _run_step(processes, tmp_path, "true")
    assert result.outputs["exit-code"] == 0
    assert beats == []


def test_a_retry_beats_at_once_replacing_the_previous_attempts_lines(
    processes: StepProcesses, tmp_path: Path
) -> None:
    earlier = {"lines": ["attempt 1 said this"], "count": 1, "attempt_errors": ["exit 1"]}
    result, beats = _run_step(processes, tmp_path, "true", earlier=[earlier])
    assert result.outputs["exit-code"] == 0
    assert beats[0] == {"lines": [], "count": 0, "attempt_errors": ["exit 1"]}


def test_a_long_quiet_step_still_beats_every_period(processes: StepProcesses, tmp_path: Path) -> None:
    # Heartbeat timeout 0.3 s: a beat every 0.1 s; the step runs well beyond one period.
    result, beats = _run_step(processes, tmp_path, "sleep 1", heartbeat_timeout=timedelta(seconds=0.3))
    assert result.outputs["exit-code"] == 0
    assert beats and beats[0]["attempt_errors"] == []


def test_output_beats_before_the_period(
    processes: StepProcesses, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="waterflow.step")  # what the agent's CLI configures
    result, beats = _run_step(processes, tmp_path, "echo one")
    assert result.log_tail == ["one"]
    assert any(beat["lines"] == ["one"] for beat in beats)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ picks the pidfd watcher itself")
def test_the_agent_loop_watches_step_processes_through_a_pidfd() -> None:
    async def run() -> tuple[object, list[int]]:
        codes = []
        for command in ("true", "exit 3", "kill -9 $$"):
            process = await asyncio.create_subprocess_shell(command)
            codes.append(await process.wait())
        return asyncio.get_child_watcher(), codes

    before = asyncio.get_child_watcher()
    with asyncio.Runner(loop_factory=loop_factory(None)) as runner:
        watcher, codes = runner.run(run())
    assert isinstance(watcher, asyncio.PidfdChildWatcher)
    assert codes == [0, 3, -9]
    # The watcher is process-wide: closing the loop gives the process its own back.
    assert asyncio.get_child_watcher() is before
