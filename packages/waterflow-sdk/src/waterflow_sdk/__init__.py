"""Waterflow SDK and the ``waterflow`` command-line client.

>>> from waterflow_sdk import Client
>>> with Client() as client:                       # doctest: +SKIP
...     ref = client.submit("examples/hello.yaml", inputs={"who": "ops"})
...     for entry in client.follow_logs(ref.id):
...         print(entry)
...     run = client.get(ref.id)
...     print(run.status, run.jobs[0].steps[0].outputs)

The reference (docs/reference/sdk.md) is generated from these docstrings: ``python -m
waterflow_sdk._docgen``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from waterflow_core.lazy import lazy_exports

if TYPE_CHECKING:
    from ._protocol import Retry, SignalAccepted
    from .async_client import AsyncClient
    from .client import Client
    from .errors import RunTimeoutError, WaterflowAPIError, WaterflowConnectionError, WaterflowSDKError
    from .models import (
        Agent,
        CancelResult,
        ErrorItem,
        Job,
        LogEntry,
        Node,
        Run,
        RunPage,
        RunRef,
        RunSnapshot,
        RunSummary,
        Step,
        Validation,
    )
    from .schedules import Schedule, ScheduledRun, ScheduleTriggered

__all__ = [
    "Agent",
    "AsyncClient",
    "CancelResult",
    "Client",
    "ErrorItem",
    "Job",
    "LogEntry",
    "Node",
    "Retry",
    "Run",
    "RunPage",
    "RunRef",
    "RunSnapshot",
    "RunSummary",
    "RunTimeoutError",
    "Schedule",
    "ScheduleTriggered",
    "ScheduledRun",
    "SignalAccepted",
    "Step",
    "Validation",
    "WaterflowAPIError",
    "WaterflowConnectionError",
    "WaterflowSDKError",
]

# Resolved on first use, so `waterflow --help` does not import httpx and pydantic. Every other
# public name is a model.
_LAZY = {
    "AsyncClient": ".async_client",
    "Client": ".client",
    "Retry": "._protocol",
    "SignalAccepted": "._protocol",
    "Schedule": ".schedules",
    "ScheduleTriggered": ".schedules",
    "ScheduledRun": ".schedules",
    "RunTimeoutError": ".errors",
    "WaterflowAPIError": ".errors",
    "WaterflowConnectionError": ".errors",
    "WaterflowSDKError": ".errors",
}
_LAZY.update({name: ".models" for name in __all__ if name not in _LAZY})

__getattr__ = lazy_exports(globals(), _LAZY)
