"""Starting a run: what ``POST /v1/workflows`` does after validating the text."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from ..dsl.inputs import resolve_inputs
from ..dsl.models import Workflow
from ..runs import SERVER_TASK_QUEUE, WORKFLOW_TYPE, RunInput, RunProgress

CLEANUP_GRACE = timedelta(hours=1)
"""Added to a run's ``timeout`` for Temporal's execution timeout: the workflow enforces the
timeout itself (so it can cancel steps and run compensations, and report ``timed_out``); the
execution timeout is only the backstop if cleanup itself hangs."""


async def start_run(
    client: Client,
    workflow: Workflow,
    inputs: Mapping[str, Any] | None = None,
    *,
    workflow_id: str,
    source: str = "",
    task_queue: str = SERVER_TASK_QUEUE,
    allow_reuse: bool = False,
    memo: Mapping[str, Any] | None = None,
) -> WorkflowHandle[Any, RunProgress]:
    """Start ``WaterflowRun`` for a validated workflow; return its handle.

    ``inputs`` are checked and typed here (:class:`~waterflow_core.errors.WorkflowValidationError`
    lists every problem). A workflow id that is already running is always rejected with
    :class:`temporalio.exceptions.WorkflowAlreadyStartedError` (the REST API answers 409); so is
    an id used by a closed run still in retention unless ``allow_reuse`` (the id is an
    idempotency key: submitting the same request twice must not run it twice).
    """
    typed = resolve_inputs(workflow, dict(inputs or {}))
    run = RunInput(
        workflow=workflow.model_dump(mode="json", by_alias=True, exclude_unset=True),
        inputs=typed,
        source=source,
    )
    execution_timeout = timedelta(seconds=workflow.timeout) + CLEANUP_GRACE if workflow.timeout else None
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
        memo={"name": workflow.name, **(memo or {})},
        static_summary=workflow.name[:200],
        static_details=workflow.description or None,
    )
