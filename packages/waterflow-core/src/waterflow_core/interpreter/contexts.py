"""The expression contexts: what workflow-side expressions see and what an agent is sent.

Agents render ``with:``/``env:`` themselves, so a step's activity input carries only the contexts
(and, for keyed contexts, only the entries) its templates reference; never ``secrets`` (the agent
resolves them) and of ``server`` only ``server.vars`` (the provider's per-server variables of an
each-server instance): the agent supplies the rest (its name, groups and facts) itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..runs import RunProgress

AGENT_SIDE = frozenset({"secrets", "server"})
"""Contexts the agent provides itself."""

KEYED = frozenset({"steps", "needs", "inputs", "vars", "matrix", "env"})
"""Contexts sent filtered to the keys an expression reads (when it names them literally)."""


def step_entry(outputs: Mapping[str, Any], outcome: str, conclusion: str, agent: str) -> dict[str, Any]:
    """``steps.<id>``: outputs, outcome (before continue-on-error), conclusion, agent."""
    return {"outputs": dict(outputs), "outcome": outcome, "conclusion": conclusion, "agent": agent}


def select(contexts: Mapping[str, Any], references: Iterable[tuple[str, str | None]]) -> dict[str, Any]:
    """The part of ``contexts`` that ``references`` read (agent-side contexts left out)."""
    wanted: dict[str, set[str] | None] = {}
    server_vars = (contexts.get("server") or {}).get("vars")
    for context, head in references:
        if context == "server" and server_vars and head in (None, "vars"):
            wanted["server"] = None
            continue
        if context in AGENT_SIDE or context not in contexts:
            continue
        if head is None or context not in KEYED:
            wanted[context] = None
        elif context not in wanted:
            wanted[context] = {head}
        elif wanted[context] is not None:
            wanted[context].add(head)  # type: ignore[union-attr]
    out: dict[str, Any] = {}
    for context in sorted(wanted):
        value = contexts[context] if context != "server" else {"vars": server_vars}
        keys = wanted[context]
        if keys is None or not isinstance(value, dict):
            out[context] = value
        else:
            out[context] = {k: v for k, v in value.items() if str(k).lower() in keys}
    return out


def merged_env(*levels: Mapping[str, str]) -> dict[str, str]:
    """Workflow → job → step environment templates; later levels win."""
    out: dict[str, str] = {}
    for level in levels:
        out.update(level)
    return out


MAX_VALUE_CHARS = 1024
MAX_KEYS = 50
MAX_LOG_LINES = 20
MAX_LOG_LINE_CHARS = 500


def summarize_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs as shown by the ``progress`` query: big values truncated, at most 50 keys."""
    out: dict[str, Any] = {}
    for index, key in enumerate(outputs):
        if index >= MAX_KEYS:
            out["…"] = f"{len(outputs) - MAX_KEYS} more outputs"
            break
        value = outputs[key]
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(text) > MAX_VALUE_CHARS:
            out[key] = text[:MAX_VALUE_CHARS] + f"… ({len(text)} chars)"
        else:
            out[key] = value
    return out


MAX_ATTEMPT_ERRORS = 10
MAX_ATTEMPT_ERROR_CHARS = 500


def attempt_errors(errors: Iterable[str]) -> list[str]:
    """The errors of earlier attempts as kept in progress: the last ten, each bounded."""
    return [clip(e, MAX_ATTEMPT_ERROR_CHARS) or "" for e in list(errors)[-MAX_ATTEMPT_ERRORS:]]


def tail(lines: Iterable[str]) -> list[str]:
    """The last log lines, each bounded, as kept in progress."""
    kept = list(lines)[-MAX_LOG_LINES:]
    return [line if len(line) <= MAX_LOG_LINE_CHARS else line[:MAX_LOG_LINE_CHARS] + "…" for line in kept]


MAX_ERROR_CHARS = 4096
"""One step's (or compensation's) error message as kept in progress and in the run's error."""
MAX_RUN_ERROR_CHARS = 16 * 1024
"""A job's or the run's error (a join of many step errors): it becomes the workflow's failure."""
PROGRESS_BUDGET = 1024 * 1024
"""Bytes of the progress JSON at the end of a run: it is the workflow's result, and Temporal
refuses payloads over 2 MB by failing the workflow *task*, which would wedge the run forever."""
_OMITTED = "omitted: the run's progress is too large"


def clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters (saying how long it was)."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"… ({len(text)} chars)"


def _size(progress: RunProgress) -> int:
    return len(progress.model_dump_json().encode())


def bounded(progress: RunProgress, budget: int = PROGRESS_BUDGET) -> RunProgress:
    """``progress`` itself when its JSON fits ``budget`` bytes, else a shrunk copy (for queries:
    an answer over Temporal's payload limit would fail the query, and the run's own progress
    must keep everything until the run ends)."""
    if _size(progress) <= budget:
        return progress
    copy = progress.model_copy(deep=True)
    bound_progress(copy, budget)
    return copy


def bound_progress(progress: RunProgress, budget: int = PROGRESS_BUDGET) -> None:
    """Shrink ``progress`` in place until its JSON fits ``budget`` bytes.

    What goes first is what matters least: log tails, then step outputs, then long errors, job
    outputs and names. Small runs (every recorded history) are left exactly as they were.
    """
    if _size(progress) <= budget:
        return
    steps = [s for j in progress.jobs for s in j.steps] + list(progress.compensations)
    for s in steps:
        s.log_tail = []
        s.attempt_errors = []
    if _size(progress) <= budget:
        return
    for s in steps:
        if s.outputs:
            s.outputs = {"…": _OMITTED}
    if _size(progress) <= budget:
        return
    for s in steps:
        s.error = clip(s.error, 200)
        s.name = clip(s.name, 200) or ""
    for j in progress.jobs:
        if j.outputs:
            j.outputs = {"…": _OMITTED}
        j.error = clip(j.error, 200)
        j.name = clip(j.name, 200) or ""
    progress.error = clip(progress.error, 2000)
