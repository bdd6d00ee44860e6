"""Issue 14 acceptance: ``concurrency:`` across runs, through the API with a real agent (ADR 0040).

Two runs with the same key and ``queue`` never overlap (the steps write their own start and
finish times); with ``cancel-running`` the first run is cancelled, its compensation runs, and the
newcomer's step starts only after that.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from waterflow_sdk import Client
from waterflow_testing import unique_name


def marks(path: Path) -> dict[str, float]:
    """``name time`` lines the steps wrote, as a mapping."""
    found: dict[str, float] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        name, _, stamp = line.partition(" ")
        found[name] = float(stamp)
    return found


def until(check, what: str, timeout: float = 120):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def workflow(group: str, key: str, policy: str, marks: Path) -> str:
    return textwrap.dedent(
        f"""
        name: locked-deploy
        inputs:
          tag: {{type: string, required: true}}
          seconds: {{type: number, default: 3}}
        concurrency: {{key: "{key}-$<< inputs.tag >>", policy: {policy}}}
        jobs:
          deploy:
            runs-on: {group}
            steps:
              - id: mark
                uses: exec/shell
                with:
                  command: echo "$<< workflow.id >>-start $(date +%s.%N)" >> {marks}
                compensate:
                  uses: exec/shell
                  with:
                    command: echo "$<< workflow.id >>-undone $(date +%s.%N)" >> {marks}
              - id: work
                uses: exec/shell
                with:
                  command: sleep $<< inputs.seconds >>; echo "$<< workflow.id >>-end $(date +%s.%N)" >> {marks}
        """
    )


def test_queue_never_overlaps_and_the_wait_is_visible(start_server, start_agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    file = tmp_path / "marks"
    text = workflow(group, unique_name("key"), "queue", file)
    with Client(server.url) as client:
        first = client.submit(text, inputs={"tag": "prod"})
        until(lambda: f"{first.id}-start" in marks(file), "the first run starts")
        second = client.submit(text, inputs={"tag": "prod"})

        def queued() -> dict[str, str] | None:
            waiting = client.get(second.id).waiting_for_lock
            return waiting if waiting and waiting.get("holder") else None

        waiting = until(queued, "the second run shows whom it waits for")
        assert waiting["holder"] == first.id and waiting["policy"] == "queue" and waiting["key"].endswith("-prod")
        held = client.get(first.id).locks
        assert [(lock["scope"], lock["holder"]) for lock in held] == [("workflow", first.id)]

        runs = [client.wait(ref.id, timeout=120, poll=0.2) for ref in (first, second)]
        assert [run.status for run in runs] == ["succeeded", "succeeded"], [run.error for run in runs]
        found = marks(file)
        assert found[f"{first.id}-end"] <= found[f"{second.id}-start"], found
        assert runs[1].waiting_for_lock is None and runs[1].locks == []


def test_cancel_running_cancels_and_compensates_the_first(start_server, start_agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    file = tmp_path / "marks"
    key = unique_name("key")
    with Client(server.url) as client:
        first = client.submit(workflow(group, key, "queue", file), inputs={"tag": "prod", "seconds": 600})
        until(lambda: f"{first.id}-start" in marks(file), "the first run starts")
        second = client.submit(workflow(group, key, "cancel-running", file), inputs={"tag": "prod", "seconds": 0})
        cancelled = client.wait(first.id, timeout=120, poll=0.2)
        assert cancelled.status == "cancelled"
        assert [c.status for c in cancelled.compensations] == ["success"]
        done = client.wait(second.id, timeout=120, poll=0.2)
        assert done.status == "succeeded", done.error
        found = marks(file)
        assert f"{first.id}-end" not in found
        assert found[f"{first.id}-undone"] <= found[f"{second.id}-start"], found
