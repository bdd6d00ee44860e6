"""A 5,000-iteration flow/loop finishes under lowered Temporal history limits (issue 8).

This module runs its own Temporal dev server with ``limit.historyCount.suggestContinueAsNew``
and ``limit.historyCount.error`` lowered (a run past the error limit is terminated by Temporal),
a real server and a real agent. The loop's nested step is an exec/shell step on the agent; the
loop runs in chunks (child workflows), each cut when Temporal suggests a new history. The test
reads every history involved through the Temporal client: none may come near the error limit.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client as TemporalClient

from waterflow_sdk import Client
from waterflow_testing import unique_name
from waterflow_testing.devserver import DevServer

ITEMS = 5000
SMALL = 600
SUGGEST_AT = 1000
ERROR_AT = 3000


@pytest.fixture(scope="module")
def temporal_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """This module's Temporal, with low history limits (the other modules keep the defaults)."""
    server = DevServer(
        tmp_path_factory.mktemp("temporal-limits"),
        headless=True,
        dynamic_config={
            "limit.historyCount.suggestContinueAsNew": SUGGEST_AT,
            "limit.historyCount.error": ERROR_AT,
        },
    )
    server.start_blocking()
    try:
        yield server
    finally:
        server.stop_blocking()


async def history_lengths(address: str, namespace: str, run_id: str) -> dict[str, int]:
    """Events in the run's history and in each chunk's, by workflow id."""
    client = await TemporalClient.connect(address, namespace=namespace)
    history = await client.get_workflow_handle(run_id).fetch_history()
    lengths = {run_id: len(history.events)}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
            lengths[child] = len((await client.get_workflow_handle(child).fetch_history()).events)
    return lengths


def test_a_5000_iteration_loop_finishes_under_lowered_history_limits(  # type: ignore[no-untyped-def]
    temporal_dev: DevServer, start_server, start_agent, tmp_path: Path
) -> None:
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    workflow = textwrap.dedent(
        f"""
        name: long-loop
        inputs:
          dir: {{type: string, required: true}}
          items: {{type: array, required: true}}
          small: {{type: array, required: true}}
        jobs:
          work:
            runs-on: {group}
            steps:
              - id: each
                uses: flow/loop
                with:
                  items: $<< inputs.items >>
                  max-parallel: 50
                  steps:
                    - id: s
                      uses: exec/shell
                      with: {{command: 'echo "i=$<< loop.index >>" >> "$WATERFLOW_OUTPUT"'}}
              - id: report
                uses: exec/shell
                with:
                  command: |
                    echo "$<< join(steps.each.outputs.results.*.s.outputs.i) >>" > "$<< inputs.dir >>/order"
              - id: small
                uses: flow/loop
                with:
                  items: $<< inputs.small >>
                  max-parallel: 50
                  steps:
                    - id: s
                      uses: exec/shell
                      with: {{command: 'echo "i=$<< loop.index >>" >> "$WATERFLOW_OUTPUT"'}}
              - id: report-small
                uses: exec/shell
                with:
                  command: |
                    echo "$<< join(steps.small.outputs.results.*.s.outputs.i) >>" > "$<< inputs.dir >>/order-small"
        """
    )
    with Client(server.url) as client:
        inputs = {"dir": str(tmp_path), "items": list(range(ITEMS)), "small": list(range(SMALL))}
        ref = client.submit(workflow, inputs=inputs)
        run = client.wait(ref.id, timeout=900, poll=1.0)
    assert run.succeeded, run.error
    steps = {step.id: step for _, step in run.steps()}
    assert steps["each"].status == "success"
    assert steps["each"].outputs["count"] == ITEMS
    assert (tmp_path / "order").read_text().split() == [",".join(str(n) for n in range(ITEMS))]
    # 600 items start in the run's history, which Temporal soon suggests to end: the rest of
    # that loop goes on in chunks.
    assert steps["small"].status == "success" and steps["small"].outputs["count"] == SMALL
    assert (tmp_path / "order-small").read_text().split() == [",".join(str(n) for n in range(SMALL))]
    assert "in the run's history, the rest in " in steps["small"].log_tail[0], steps["small"].log_tail

    lengths = asyncio.run(history_lengths(temporal_dev.address, temporal_dev.namespace, ref.id))
    chunks = [wid for wid in lengths if wid != ref.id]
    # Each chunk stops starting iterations once Temporal suggests a new history (~1000 events),
    # so 5,000 iterations of at least 3 events each take well over the 5 chunks of 1000 items.
    assert len(chunks) > ITEMS // 1000, lengths
    assert max(lengths.values()) < ERROR_AT * 2 // 3, lengths
