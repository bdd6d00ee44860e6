"""A run's job graph as written: each job's ``needs`` and the source lines of it and its steps.

The progress query knows what ran, not how the jobs depend on each other nor where they are in
the YAML; the web console needs both to draw the DAG and to point at a failing step's line. Both
come from the run's snapshot (its first history event), which never changes: a graph is computed
once per run execution and kept in a small cache, since the console re-reads a live run every
second or two and a workflow text may be large.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from pydantic import ValidationError

from waterflow_core.dsl.models import Workflow
from waterflow_core.dsl.strict_yaml import YamlDocument, load_strict_yaml
from waterflow_core.errors import WorkflowValidationError
from waterflow_core.interpreter.dag import step_ids
from waterflow_core.runs import RunInput

from .models import JobGraph

CACHED_GRAPHS = 256


def job_graph(started: RunInput) -> list[JobGraph]:
    """Every job of the run's workflow in written order; ``[]`` when the workflow cannot be read."""
    try:
        workflow = Workflow.model_validate(started.workflow)
    except ValidationError:
        return []  # a snapshot this version cannot read: the interpreter fails it the same way
    doc = _document(started.source)
    written = doc.data.get("jobs") if doc is not None and isinstance(doc.data, dict) else None
    graph: list[JobGraph] = []
    for job_id, job in workflow.jobs.items():
        source_job = written.get(job_id) if isinstance(written, dict) else None
        source_steps = source_job.get("steps") if isinstance(source_job, dict) else None
        lines: dict[str, int] = {}
        if doc is not None and isinstance(source_steps, list):
            for index, sid in enumerate(step_ids(job.steps)):
                if index < len(source_steps):
                    lines[sid] = doc.key_position(("jobs", job_id, "steps", index)).line
        strategy = job.strategy
        graph.append(
            JobGraph(
                id=job_id,
                name=job.name or job_id,
                needs=list(job.needs),
                fan_out=strategy is not None and (strategy.matrix is not None or strategy.each_server),
                line=doc.key_position(("jobs", job_id)).line if doc is not None and source_job is not None else None,
                step_lines=lines,
            )
        )
    return graph


def _document(source: str) -> YamlDocument | None:
    """The submitted text, loaded for its positions (``None``: no text, or one that does not load)."""
    if not source:
        return None
    try:
        return load_strict_yaml(source)
    except WorkflowValidationError:
        return None


class JobGraphs:
    """Job graphs by run execution (``(id, run_id)``): the snapshot behind one never changes."""

    def __init__(self, size: int = CACHED_GRAPHS) -> None:
        self._size = size
        self._graphs: OrderedDict[tuple[str, str], list[JobGraph]] = OrderedDict()

    async def of(self, key: tuple[str, str], started: RunInput) -> list[JobGraph]:
        """The graph of the run execution ``key`` started with ``started`` (computed on first use,
        in a thread: loading a large text must not stall the event loop)."""
        graph = self._graphs.get(key)
        if graph is None:
            graph = await asyncio.to_thread(job_graph, started)
            self._graphs[key] = graph
            if len(self._graphs) > self._size:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        # Callers get copies: a RunDetail is mutable and must not alter the cached graph.
        return [entry.model_copy(deep=True) for entry in graph]


__all__ = ["JobGraphs", "job_graph"]
