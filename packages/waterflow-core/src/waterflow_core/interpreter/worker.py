"""The interpreter's worker, as ``waterflow server`` (and tests) run it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from ..providers import AgentsServerGroupProvider, ServerGroupProvider
from ..runs import SERVER_TASK_QUEUE
from ..temporal import sandboxed_runner
from .chunkrun import WaterflowLoopChunk
from .locks import WaterflowLock, lock_activities
from .servers import servers_activity
from .workflow import WaterflowRun


def build_interpreter_worker(
    client: Client,
    task_queue: str = SERVER_TASK_QUEUE,
    *,
    server_groups: ServerGroupProvider | None = None,
    activities: Sequence[Callable[..., Any]] = (),
    **kwargs: Any,
) -> Worker:
    """A worker for ``WaterflowRun`` on ``task_queue`` (run it with ``async with`` or ``run()``).

    ``client`` must use Waterflow's data converter (``waterflow_core.temporal.connect``).
    ``server_groups`` answers ``strategy.each-server`` (default: the ``agents`` provider, the
    live agent registry).
    Extra keyword arguments go to :class:`temporalio.worker.Worker`.
    """
    kwargs.setdefault("workflow_runner", sandboxed_runner())
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[WaterflowRun, WaterflowLoopChunk, WaterflowLock],
        activities=[
            # Also each-server's local activity: it runs on the worker running the workflow.
            servers_activity(server_groups or AgentsServerGroupProvider(client=client), client),
            *lock_activities(client),
            *activities,
        ],
        **kwargs,
    )
