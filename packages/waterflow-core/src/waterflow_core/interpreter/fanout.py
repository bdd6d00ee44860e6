"""Fan-out of a job: matrix combinations (GitHub Actions rules) and one instance per server.

Pure functions: the strategy arrives here already rendered (its templates evaluated).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

MAX_INSTANCES = 256
"""GitHub's limit on matrix jobs; more is almost always a mistake (and a huge history)."""

SERVERS_ACTIVITY = "waterflow.servers-of-group"
"""Activity served by the interpreter worker: a group's servers as the ServerGroupProvider lists
them, only the live ones or each with its ``live`` flag (``interpreter/servers.py``)."""


class ServersRequest(BaseModel):
    """The activity's input from runs that count servers without a live agent as failed."""

    group: str
    limit: list[str] | None = None
    """The run's ``--limit`` patterns (waterflow_core.limit): only the servers they match are listed."""


class ListedServer(BaseModel):
    """One server the provider lists for a group, and whether a live agent of that name runs."""

    name: str
    live: bool
    vars: dict[str, Any] = Field(default_factory=dict)
    """The provider's per-server variables (``server.vars.*``); absent from answers recorded before."""


class FanoutError(ValueError):
    """The strategy cannot be expanded (not a list, too many instances, no combination)."""


@dataclass(frozen=True, slots=True)
class Instance:
    """One instance of a job: its label (``#<label>`` in activity ids), matrix and agent."""

    label: str | None
    matrix: dict[str, Any] = field(default_factory=dict)
    server: str | None = None
    reachable: bool = True
    """False for a listed server without a live agent: the instance fails without running."""


def expand_matrix(matrix: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of ``matrix``, with ``exclude`` and ``include`` applied as GitHub does.

    - the combinations are the cartesian product of the keys other than include/exclude, in the
      order the keys are written;
    - an ``exclude`` entry removes every combination that matches all of its keys;
    - an ``include`` entry is merged into every (original) combination whose original keys it
      does not contradict; added keys may be overwritten by later includes; an entry that
      merges into no combination becomes a combination of its own.
    """
    axes: dict[str, list[Any]] = {}
    for key, values in matrix.items():
        if key in ("include", "exclude"):
            continue
        if not isinstance(values, list):
            raise FanoutError(f"matrix.{key} must be a list, got {_show(values)}")
        if not values:
            raise FanoutError(f"matrix.{key} is an empty list")
        axes[key] = values
    include = _entries(matrix.get("include"), "include")
    exclude = _entries(matrix.get("exclude"), "exclude")
    combos: list[dict[str, Any]] = []
    if axes:
        # Counted before anything is built: the product grows exponentially with the axes, and
        # building it would block the workflow task (and its memory) long before the check.
        count = math.prod(len(values) for values in axes.values())
        if count > MAX_INSTANCES * 4:
            raise FanoutError(f"matrix has {count} combinations (limit {MAX_INSTANCES})")
        combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    combos = [c for c in combos if not any(_matches(c, ex) for ex in exclude)]
    originals = [(c, dict(c)) for c in combos]
    extra: list[dict[str, Any]] = []
    for entry in include:
        merged = False
        for combo, original in originals:
            if all(key not in original or original[key] == value for key, value in entry.items()):
                combo.update(entry)
                merged = True
        if not merged:
            extra.append(dict(entry))
    combos += extra
    if not combos:
        raise FanoutError("matrix has no combinations left")
    if len(combos) > MAX_INSTANCES:
        raise FanoutError(f"matrix has {len(combos)} combinations (limit {MAX_INSTANCES})")
    return combos


def _entries(value: Any, name: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise FanoutError(f"matrix.{name} must be a list of mappings, got {_show(value)}")
    if len(value) > MAX_INSTANCES * 4:
        # Each entry is matched against every combination: bounded, so the workflow task is.
        raise FanoutError(f"matrix.{name} has {len(value)} entries (limit {MAX_INSTANCES * 4})")
    return value


def _matches(combo: Mapping[str, Any], pattern: Mapping[str, Any]) -> bool:
    return all(key in combo and combo[key] == value for key, value in pattern.items())


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def label_instances(pairs: Sequence[tuple[str | None, Mapping[str, Any]]]) -> list[Instance]:
    """Instances for ``(server, matrix combination)`` pairs, labelled uniquely and readably.

    The label is the server name then the combination's values, comma-separated
    (``web-1,linux,3.11``), so activity ids read ``deploy/up#web-1,linux,3.11``.
    """
    if len(pairs) > MAX_INSTANCES:
        raise FanoutError(f"{len(pairs)} instances (limit {MAX_INSTANCES})")
    out: list[Instance] = []
    seen: set[str] = set()
    for server, combo in pairs:
        parts = ([server] if server else []) + [_label_part(v) for v in combo.values()]
        base = ",".join(parts) or str(len(out) + 1)
        label, n = base, 1
        while label in seen:
            n += 1
            label = f"{base}~{n}"
        seen.add(label)
        out.append(Instance(label=label, matrix=dict(combo), server=server))
    return out


def _label_part(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return format(value, "g") if isinstance(value, float) else str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
