"""Which runs rerun a run: found through Temporal's visibility, never stored (ADR 0039).

A closed run cannot be changed, so the link lives on the rerun: its memo ``rerun_of``. A run's
reruns are the ``WaterflowRun`` executions started after it whose memo names it.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from temporalio.client import Client

from waterflow_core.rerun import RERUN_MEMO
from waterflow_core.runs import WORKFLOW_TYPE

MAX_SCAN = 1000
"""The most runs started after a run that are looked at for its reruns (newest first)."""
PAGE_SIZE = 200


async def reruns_of(client: Client, run_id: str, since: datetime | None) -> list[str]:
    """The ids of the reruns of ``run_id`` among the runs started since ``since``, oldest first.

    Best effort: a visibility store that cannot answer gives an empty list, not an error.
    """
    query = f"WorkflowType = '{WORKFLOW_TYPE}'"
    if since is not None:
        moment = since if since.tzinfo else since.replace(tzinfo=UTC)
        query += f" AND StartTime >= '{moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'"
    found: list[str] = []
    seen = 0
    with contextlib.suppress(Exception):
        async for execution in client.list_workflows(query, page_size=PAGE_SIZE):
            seen += 1
            if seen > MAX_SCAN:
                break
            if execution.id == run_id:
                continue
            memo = await execution.memo()
            if memo.get(RERUN_MEMO) == run_id:
                found.append(execution.id)
    return found[::-1]
