"""The event spool: events queued when the server process dies reach the handler from the next one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from waterflow_core import events
from waterflow_core.webhook import WebhookEventHandler
from waterflow_server.event_delivery import EventDelivery
from waterflow_server.event_spool import Spool, SpoolError
from waterflow_testing import eventually
from waterflow_testing.webhook import webhook_receiver

pytestmark = pytest.mark.unit


def _event(seq: int) -> dict[str, Any]:
    return {"id": f"wf/run/{seq}", "type": "step.started", "workflow_id": "wf", "run_id": "run", "seq": seq}


def _ids(received: list[dict[str, Any]]) -> list[str]:
    """Ids in order of first arrival (a receiver de-duplicates: delivery is at-least-once)."""
    return list(dict.fromkeys(event["id"] for event in received))


# A server process in miniature: delivery with a spool, three events published, then it waits to
# be killed while its receiver holds the first request.
CRASHING = textwrap.dedent(
    """
    import asyncio, pathlib, sys
    from waterflow_core import events
    from waterflow_core.webhook import WebhookEventHandler
    from waterflow_server.event_delivery import EventDelivery

    async def main():
        handler = WebhookEventHandler({"url": sys.argv[1], "timeout": 120})
        delivery = EventDelivery([handler], spool=pathlib.Path(sys.argv[2]))
        delivery.start()
        for seq in range(3):
            events.publish({"id": f"wf/run/{seq}", "type": "step.started", "seq": seq})
        print("published", flush=True)
        await asyncio.sleep(600)

    asyncio.run(main())
    """
)


async def test_events_queued_by_a_killed_process_are_delivered_by_the_next(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with webhook_receiver() as hook:
        hook.gate.clear()  # the dying process never gets an answer
        process = subprocess.Popen(
            [sys.executable, "-c", CRASHING, hook.url, str(spool)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == b"published"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        hook.gate.set()
        delivery = EventDelivery([WebhookEventHandler({"url": hook.url})], spool=spool)
        delivery.start()
        await eventually(lambda: _ids(hook.delivered()), lambda ids: len(ids) == 3, timeout=30)
        await delivery.close()
    assert _ids(hook.delivered()) == ["wf/run/0", "wf/run/1", "wf/run/2"]
    stats = delivery.stats()["webhook"]
    assert (stats.recovered, stats.delivered, stats.lost) == (3, 3, 0)
    assert (spool / "webhook.jsonl").read_bytes() == b""  # all done: the spool is empty again


async def test_events_left_at_shutdown_stay_in_the_spool(tmp_path: Path) -> None:
    with webhook_receiver() as hook:
        hook.gate.clear()
        first = EventDelivery([WebhookEventHandler({"url": hook.url, "timeout": 60})], spool=tmp_path, drain_seconds=0)
        first.start()
        for seq in range(2):
            events.publish(_event(seq))
        await first.close()
        assert first.stats()["webhook"].lost == 2
        lines = (tmp_path / "webhook.jsonl").read_text().splitlines()
        assert [json.loads(line)["id"] for line in lines] == ["wf/run/0", "wf/run/1"]
        hook.gate.set()
        second = EventDelivery([WebhookEventHandler({"url": hook.url})], spool=tmp_path)
        second.start()
        events.publish(_event(2))  # new events queue behind the recovered ones
        await eventually(lambda: _ids(hook.delivered()), lambda ids: len(ids) == 3, timeout=30)
        await second.close()
    assert _ids(hook.delivered()) == ["wf/run/0", "wf/run/1", "wf/run/2"]


def test_a_torn_last_line_is_dropped_and_the_offset_is_honoured(tmp_path: Path) -> None:
    lines = [json.dumps(_event(seq), separators=(",", ":")).encode() + b"\n" for seq in range(3)]
    (tmp_path / "h.jsonl").write_bytes(b"".join(lines) + b'{"id": "wf/run/3", "ty')
    (tmp_path / "h.offset").write_text(str(len(lines[0])).rjust(20))  # event 0 was done with
    spool = Spool(tmp_path, "h")
    recovered = spool.recover()
    assert [event["id"] for event, _ in recovered] == ["wf/run/1", "wf/run/2"]
    assert (tmp_path / "h.jsonl").read_bytes() == b"".join(lines[1:])
    assert recovered[-1][1] == len(b"".join(lines[1:]))
    spool.close()


def test_one_process_at_a_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "webhook")
    with pytest.raises(SpoolError, match="in use by another server process"):
        Spool(tmp_path, "webhook")
    spool.close()
    Spool(tmp_path, "webhook").close()  # released with close (and by the kernel when a process dies)


def test_spool_files_are_private(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", "webhook")
    spool.recover()
    spool.append(_event(1))
    assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700
    for name in ("webhook.jsonl", "webhook.offset"):
        assert (tmp_path / "spool" / name).stat().st_mode & 0o077 == 0, name
    spool.close()


def test_handler_names_become_safe_file_names(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "../evil name#2")
    assert spool.path.parent == tmp_path and spool.path.name == ".._evil_name_2.jsonl"
    spool.close()


async def test_two_handlers_of_one_name_get_their_own_spool(tmp_path: Path) -> None:
    with webhook_receiver() as one, webhook_receiver() as two:
        delivery = EventDelivery(
            [WebhookEventHandler({"url": one.url}), WebhookEventHandler({"url": two.url})], spool=tmp_path
        )
        delivery.start()
        events.publish(_event(1))
        await eventually(lambda: (one.delivered(), two.delivered()), lambda got: all(got), timeout=30)
        await delivery.close()
    assert sorted(os.listdir(tmp_path)) == ["webhook.jsonl", "webhook.offset", "webhook_2.jsonl", "webhook_2.offset"]
