"""Bounds on step logging: the per-step rate limit and the log shipper's bounded queue.

Deterministic without timing: budgets refill at 1 byte a second, so a test's few milliseconds
never buy a line back; the slow log handler is a gate the test opens.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from waterflow_agent.masking import SecretMasker
from waterflow_agent.params import ByteSize
from waterflow_agent.steplog import LINE_COST, RECORD_COST, LogBudget, LogShipper, StepLog
from waterflow_core.providers import LogHandler

pytestmark = pytest.mark.unit


def step_log(shipped: list[dict[str, Any]], budget: LogBudget, secrets: tuple[str, ...] = ()) -> StepLog:
    """A step's log shipping to ``shipped``, at INFO whatever the root logger's level."""
    step = StepLog("job/s1", SecretMasker(secrets), ship=shipped.append, budget=budget)
    step.logger.setLevel(logging.INFO)
    return step


def test_lines_over_the_budget_are_dropped_and_counted() -> None:
    shipped: list[dict[str, Any]] = []
    secret = "hunter2-secret"
    step = step_log(shipped, LogBudget(rate=1, burst=10_000), (secret,))
    for _ in range(10):
        step.logger.info("%s", "x" * 1000)  # 1256 bytes of budget each: 7 fit in 10 000
    assert [len(r["message"]) for r in shipped] == [1000] * 7
    # 1208 bytes are left: a 900-character line (1156) fits, and the count of dropped lines comes first.
    step.logger.info("%s %s", secret, "y" * (900 - len(secret) - 1))
    assert [r["message"] for r in shipped[7:]] == [
        "WARNING: 3 log line(s) (3000 bytes) dropped: the step logged faster than the agent's limit "
        "of 1 bytes a second (bursts of 10000)",
        "*** " + "y" * (900 - len(secret) - 1),
    ]
    assert shipped[7]["level"] == "WARNING"
    step.logger.info("%s", "z" * 100)  # 52 bytes left: dropped
    step.close()  # the end of the step reports what is still uncounted
    assert shipped[-1]["message"].startswith("WARNING: 1 log line(s) (100 bytes) dropped")
    assert step.count == len(shipped) == 10
    assert step.tail[-1] == shipped[-1]["message"]


def test_a_line_larger_than_the_burst_is_dropped_whole() -> None:
    shipped: list[dict[str, Any]] = []
    step = step_log(shipped, LogBudget(rate=1, burst=65_536))
    step.logger.info("%s", "x" * 100_000)
    step.close()
    assert [r["message"] for r in shipped] == [
        "WARNING: 1 log line(s) (100000 bytes) dropped: the step logged faster than the agent's limit "
        "of 1 bytes a second (bursts of 65536)"
    ]


def test_rate_zero_is_no_limit() -> None:
    shipped: list[dict[str, Any]] = []
    step = step_log(shipped, LogBudget(rate=0, burst=65_536))
    for _ in range(100):
        step.logger.info("%s", "x" * 10_000)
    step.close()
    assert len(shipped) == 100


class GatedHandler(LogHandler):
    """A LogHandler that stalls until the test opens its gate (a handler that fell behind)."""

    name = "gated"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.gate = asyncio.Event()
        self.records: list[Mapping[str, Any]] = []

    async def emit(self, record: Mapping[str, Any]) -> None:
        await self.gate.wait()
        self.records.append(record)

    async def close(self) -> None:
        pass


def _record(step: str, i: int) -> dict[str, Any]:
    fields = {"workflow_id": "wf", "run_id": "r", "step_path": step, "attempt": 1, "level": "INFO"}
    return {**fields, "message": f"{i:0100d}"}


async def test_the_shippers_queue_is_bounded_and_says_what_it_dropped() -> None:
    handler = GatedHandler()
    per_record = 100 + RECORD_COST
    shipper = LogShipper(handler, max_queued=10 * per_record)
    for i in range(1000):
        shipper.submit(_record("job/a", i))
        shipper.submit(_record("job/b", i))
    await asyncio.sleep(0)  # the shipper takes its first record and stalls in the handler
    assert shipper.dropped >= 2000 - 11
    handler.gate.set()
    await shipper.close()
    messages = [(r["step_path"], r["message"]) for r in handler.records]
    kept = [m for m in messages if "dropped" not in m[1]]
    assert len(kept) == 2000 - shipper_dropped(messages) <= 11
    markers = [m for m in messages if "dropped" in m[1]]
    assert sorted(step for step, _ in markers) == ["job/a", "job/b"]  # one per step, with its fields
    assert markers[0][1].endswith("log line(s) dropped: the agent's log handler fell behind")
    assert shipper.dropped == 0


def shipper_dropped(messages: list[tuple[str, str]]) -> int:
    """How many records the markers among ``messages`` say were dropped."""
    return sum(int(text.split()[0]) for _, text in messages if "dropped" in text)


async def test_records_flow_through_when_the_handler_keeps_up() -> None:
    handler = GatedHandler()
    handler.gate.set()
    shipper = LogShipper(handler, max_queued=10 * (100 + RECORD_COST))
    for i in range(1000):
        shipper.submit(_record("job/a", i))
        await asyncio.sleep(0)
    await shipper.close()
    assert [r["message"] for r in handler.records] == [f"{i:0100d}" for i in range(1000)]


def test_line_cost_is_what_a_record_adds() -> None:
    assert 0 < LINE_COST <= RECORD_COST


@pytest.mark.parametrize(
    ("text", "size"),
    [("65536", 65536), ("64KiB", 65536), ("1mib", 1024**2), ("2 GiB", 2 * 1024**3), ("0", 0), ("10B", 10)],
)
def test_sizes(text: str, size: int) -> None:
    assert ByteSize().convert(text, None, None) == size


@pytest.mark.parametrize("text", ["1.5MiB", "-1", "1MB", "lots", ""])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(Exception, match="is not a size like 65536, 512KiB, 1MiB or 1GiB"):
        ByteSize().convert(text, None, None)


def test_a_burst_below_one_long_line_is_a_clear_startup_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-P", "-m", "waterflow_agent", "--name", "x", "--workdir", str(tmp_path / "work"),
         "--temporal-address", "127.0.0.1:1", "--step-log-burst", "1KiB"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--step-log-burst" in done.stderr and "65536" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_steps_lines_are_collected_when_the_agents_own_log_level_is_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`waterflow agent --log-level warning` once collected none of a step's info lines: no tail, nothing shipped."""
    shipped: list[dict[str, Any]] = []
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.WARNING)
    try:
        with caplog.at_level(logging.WARNING):
            step = StepLog("job/quiet", SecretMasker([]), ship=shipped.append)
            step.logger.info("hello from the step")
            step.logger.warning("careful")
    finally:
        root.setLevel(previous)
    assert step.tail == ["hello from the step", "WARNING: careful"]
    assert [record["message"] for record in shipped] == ["hello from the step", "WARNING: careful"]
    # The agent's own log still follows its level: only the warning reached it.
    agent_log = [r.getMessage() for r in caplog.records if r.name.startswith("waterflow.step")]
    assert agent_log == ["careful"]
