"""The expression contexts: what workflow-side expressions see and what an agent is sent.

Agents render ``with:``/``env:`` themselves, so a step's activity input carries only the contexts
(and, for keyed contexts, only the entries) its templates reference; never ``secrets`` (the agent
resolves them) and never ``server`` (the agent supplies its own facts).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

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
    for context, head in references:
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
        value = contexts[context]
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


def tail(lines: Iterable[str]) -> list[str]:
    """The last log lines, each bounded, as kept in progress."""
    kept = list(lines)[-MAX_LOG_LINES:]
    return [line if len(line) <= MAX_LOG_LINE_CHARS else line[:MAX_LOG_LINE_CHARS] + "…" for line in kept]
