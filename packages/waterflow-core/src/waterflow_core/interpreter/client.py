"""Starting a run: what ``POST /v1/workflows`` does after validating the text."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from ..runs import CHECK_MEMO, NAME_MEMO, SERVER_TASK_QUEUE, WORKFLOW_TYPE, RunInput, RunProgress

CLEANUP_GRACE = timedelta(hours=1)
"""Added to a run's ``timeout`` for Temporal's execution timeout: the workflow enforces the
timeout itself (so it can cancel steps and run compensations, and report ``timed_out``); the
execution timeout is only the backstop if cleanup itself hangs."""

START_RPC_TIMEOUT = timedelta(seconds=10)
"""How long a start may wait for Temporal's answer. Without it a Temporal that accepts the
connection but does not answer (stopped, overloaded) holds the submit forever; with it the
caller gets ``DEADLINE_EXCEEDED`` (the API answers 503). A start that did reach Temporal is
found again by its id (ADR 0046)."""


async def start_run(
    client: Client,
    run: RunInput,
    *,
    workflow_id: str,
    task_queue: str = SERVER_TASK_QUEUE,
    allow_reuse: bool = False,
    memo: Mapping[str, Any] | None = None,
) -> WorkflowHandle[Any, RunProgress]:
    """Start ``WaterflowRun`` with a planned run (:meth:`RunInput.plan`); return its handle.

    A workflow id that is already running is always rejected with
    :class:`temporalio.exceptions.WorkflowAlreadyStartedError` (the REST API answers 409); so is
    an id used by a closed run still in retention unless ``allow_reuse`` (the id is an
    idempotency key: submitting the same request twice must not run it twice).
    A worker for ``task_queue`` on this same ``client`` gets the first workflow task directly
    (Temporal's eager workflow start); any other worker still gets it by polling.
    """
    execution_timeout = timedelta(seconds=run.timeout) + CLEANUP_GRACE if run.timeout else None
    return await client.start_workflow(
        WORKFLOW_TYPE,
        run,
        id=workflow_id,
        task_queue=task_queue,
        result_type=RunProgress,
        execution_timeout=execution_timeout,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=(
            WorkflowIDReusePolicy.ALLOW_DUPLICATE if allow_reuse else WorkflowIDReusePolicy.REJECT_DUPLICATE
        ),
        memo={NAME_MEMO: run.name, **({CHECK_MEMO: True} if run.check else {}), **(memo or {})},
        static_summary=run.name[:200],
        static_details=run.description or None,
        rpc_timeout=START_RPC_TIMEOUT,
        # The server's interpreter worker shares this client: Temporal then returns the run's
        # first workflow task with the start, with no matching or poll (ADR 0048). Without a
        # local worker with a free slot (``--no-worker``, the CLI) the SDK does not ask for it.
        request_eager_start=True,
    )
