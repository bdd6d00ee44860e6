"""``waterflow schedule`` as a separate process against a real server and Temporal (ADR 0037),
and the SDK's schedule methods on both clients."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from waterflow_sdk import AsyncClient, Client
from waterflow_sdk.errors import WaterflowAPIError
from waterflow_testing.server import WaterflowCLI

Api = Any  # the `api` fixture of conftest.py

WORKFLOW = """name: cli-scheduled
inputs:
  region: {type: string, required: true}
jobs:
  report:
    runs-on: nowhere
    steps:
      - uses: flow/sleep
        with: {duration: 100ms}
"""
YEARLY = "0 3 1 1 *"


@pytest.fixture
def workflow_file(tmp_path: Path) -> Path:
    path = tmp_path / "scheduled.yaml"
    path.write_text(WORKFLOW)
    return path


def test_schedule_commands(api: Api, waterflow_cli: WaterflowCLI, workflow_file: Path) -> None:
    schedule_id = f"cli-{uuid.uuid4().hex[:8]}"

    def cli(*args: str) -> Any:
        return waterflow_cli("schedule", *args, server=api.url)

    created = cli(
        "create",
        str(workflow_file),
        "--cron",
        YEARLY,
        "-i",
        "region=eu",
        "--id",
        schedule_id,
        "--overlap",
        "buffer-one",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == schedule_id and "next run: " in created.stderr

    shown = cli("show", schedule_id, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert body["cron"] == [YEARLY] and body["overlap"] == "buffer-one" and body["inputs"] == {"region": "eu"}
    text = cli("show", schedule_id).stdout
    assert "when:     0 3 1 1 *" in text and "input:    region=eu" in text

    deadline = time.monotonic() + 30
    while schedule_id not in (listed := cli("list")).stdout:
        assert time.monotonic() < deadline, listed.stdout + listed.stderr
        time.sleep(0.3)
    row = next(line for line in listed.stdout.splitlines() if line.startswith(schedule_id))
    assert row.split("\t")[1:3] == ["active", YEARLY] and row.endswith("cli-scheduled")
    assert "WORKFLOW" in cli("list", "-o", "table").stdout

    assert cli("pause", schedule_id).stdout.strip() == f"paused {schedule_id}"
    assert json.loads(cli("show", schedule_id, "-o", "json").stdout)["paused"] is True
    assert json.loads(cli("unpause", schedule_id, "-o", "json").stdout)["paused"] is False
    assert cli("trigger", schedule_id).returncode == 0
    deadline = time.monotonic() + 30
    while "ran:" not in (text := cli("show", schedule_id).stdout):
        assert time.monotonic() < deadline, text
        time.sleep(0.3)
    assert f"ran:      {schedule_id}-" in text
    assert cli("delete", schedule_id).stdout.strip() == f"deleted {schedule_id}"
    gone = cli("show", schedule_id)
    assert gone.returncode == 1 and "no schedule with id" in gone.stderr and "Traceback" not in gone.stderr


def test_schedule_command_mistakes(api: Api, waterflow_cli: WaterflowCLI, workflow_file: Path) -> None:
    bad_cron = waterflow_cli(
        "schedule", "create", str(workflow_file), "--cron", "* * *", "-i", "region=eu", server=api.url
    )
    assert bad_cron.returncode == 1 and "cron[0]" in bad_cron.stderr and "5 fields" in bad_cron.stderr
    missing_input = waterflow_cli("schedule", "create", str(workflow_file), "--cron", YEARLY, server=api.url)
    assert missing_input.returncode == 2 and "region" in missing_input.stderr
    no_timing = waterflow_cli("schedule", "create", str(workflow_file), "-i", "region=eu", server=api.url)
    assert no_timing.returncode == 2 and "--cron, --interval or both" in no_timing.stderr
    bad_overlap = waterflow_cli(
        "schedule", "create", str(workflow_file), "--cron", YEARLY, "--overlap", "never", server=api.url
    )
    assert bad_overlap.returncode == 2


def test_both_clients(api: Api, workflow_file: Path) -> None:
    schedule_id = f"sdk-{uuid.uuid4().hex[:8]}"
    with Client(api.url) as client:
        created = client.create_schedule(
            workflow_file, interval="2h", inputs={"region": "us"}, id=schedule_id, paused=True
        )
        assert created.interval_seconds == 7200 and created.paused and created.inputs == {"region": "us"}
        assert client.unpause_schedule(schedule_id).paused is False
        with pytest.raises(WaterflowAPIError) as caught:
            client.create_schedule(workflow_file, cron="0 25 * * *", inputs={"region": "us"})
        assert caught.value.status == 422 and caught.value.errors[0].path == "cron[0]"

    async def use_async() -> None:
        async with AsyncClient(api.url) as client:
            assert (await client.get_schedule(schedule_id)).interval_seconds == 7200
            assert (await client.pause_schedule(schedule_id)).paused is True
            assert (await client.trigger_schedule(schedule_id)).id == schedule_id
            for _ in range(100):
                if any(item.id == schedule_id for item in await client.list_schedules()):
                    break
                await asyncio.sleep(0.3)
            else:
                raise AssertionError("not listed")
            await client.delete_schedule(schedule_id)
            with pytest.raises(WaterflowAPIError) as gone:
                await client.get_schedule(schedule_id)
            assert gone.value.status == 404

    asyncio.run(use_async())
