"""Bounds on what the run sends through Temporal: a payload Temporal refuses must fail a step.

Temporal refuses a payload over 2 MB (and a workflow task's commands over 4 MB together) by
failing the workflow *task*, not the run: the task is retried forever, the run shows
``running`` and nothing after it (``always()`` steps, compensations) ever runs. So the
interpreter measures a step's activity input before scheduling it and fails that step itself,
with its path, the size and the largest parts of the input (ADR 0026).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from temporalio import workflow

from ..steptask import StepTask

MAX_STEP_INPUT = 1024 * 1024
"""Bytes of one step's (or compensation's) activity input: half of Temporal's 2 MB payload
limit, so two steps scheduled in the same workflow task stay under its 4 MB message limit too."""

_LARGEST_SHOWN = 3


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as the workflow's payload converter encodes it (what Temporal counts)."""
    return workflow.payload_converter().to_payloads([value])[0].ByteSize()


def size_text(size: int) -> str:
    """``2.1 MB (2100412 bytes)``: readable, and exact for whoever compares with a limit."""
    return f"{size / 1_000_000:.1f} MB ({size} bytes)"


def oversized_input(task: StepTask, limit: int = MAX_STEP_INPUT) -> str | None:
    """Why ``task`` cannot be sent to an agent (None when it fits ``limit``)."""
    size = encoded_size(task)
    if size <= limit:
        return None
    parts = sorted(_parts(task), key=lambda part: part[1], reverse=True)[:_LARGEST_SHOWN]
    largest = ", ".join(f"{name} ({n} bytes)" for name, n in parts if n > 0)
    return (
        f"its input is {size_text(size)}, over the {limit} bytes a step may be sent"
        + (f"; largest: {largest}" if largest else "")
        + "; pass large data through files or an artifact store, not outputs"
    )


def _parts(task: StepTask) -> list[tuple[str, int]]:
    """The input's parts with their JSON sizes: each context's entries, ``with``, ``env``."""
    parts = [("with", _json_size(task.with_)), ("env", _json_size(task.env))]
    for context, value in task.contexts.items():
        if isinstance(value, Mapping):
            parts += [(f"{context}.{key}", _json_size(entry)) for key, entry in value.items()]
        else:
            parts.append((context, _json_size(value)))
    return parts


def _json_size(value: Any) -> int:
    return len(json.dumps(value, default=str).encode())
