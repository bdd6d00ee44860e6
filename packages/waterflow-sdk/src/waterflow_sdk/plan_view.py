"""``waterflow plan``: the text view of a :class:`~waterflow_core.plan.Plan`, and the local plan.

The tree reads job → batch → server (or matrix instance) → step, each step with its ``with:``
values as the run would render them; a value the run renders itself is shown as written and
marked ``(at run time)``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from typing import Any

from waterflow_core.dsl.models import Workflow
from waterflow_core.plan import Plan, PlannedInstance, PlannedJob, PlannedStep, plan_workflow

from ._protocol import Call

PLAN_PATH = "/v1/plan"
RUN_TIME = "(at run time)"


def plan_call(text: str, inputs: Mapping[str, Any] | None = None) -> Call:
    """``POST /v1/plan`` (it starts nothing: idempotent)."""
    return Call("POST", PLAN_PATH, json={"workflow": text, "inputs": dict(inputs or {})}, idempotent=True)


def local_plan(workflow: Workflow, inputs: Mapping[str, Any]) -> Plan:
    """The plan without a server: no provider, so each-server shows its group "resolved at run time"."""
    return asyncio.run(plan_workflow(workflow, inputs))


def plan_lines(plan: Plan) -> Iterator[str]:
    """The plan as an indented tree, one line at a time."""
    where = "live servers from the server" if plan.live_servers else "local plan: servers resolved at run time"
    yield f"plan of {plan.name} ({where}; nothing was started)"
    for job in plan.jobs:
        yield from _job(job)


def _job(job: PlannedJob) -> Iterator[str]:
    head = f"job {job.id}" + (f" ({job.name})" if job.name != job.id else "")
    head += f" on {'each server of ' if job.each_server else ''}group {job.runs_on}"
    if job.needs:
        head += f", needs {', '.join(job.needs)}"
    head += f": {job.decision}" + (f" ({job.reason})" if job.reason else "")
    yield head
    if job.error:
        yield f"  error: {job.error}"
    if job.servers is not None:
        yield f"  live agents (any one runs each step): {', '.join(job.servers) or 'none'}"
    if job.servers_note:
        yield f"  {job.servers_note}"
    sizes = [len(batch.instances) for batch in job.batches]
    limits = []
    if job.batch is not None:
        spec = ", ".join(map(str, job.batch))
        known = job.servers_note is None and job.decision != "skipped"
        limits.append(f"batch [{spec}]: " + (f"batches of {sizes}" if known else "sized when the servers are known"))
    if job.max_fail_percentage is not None:
        limits.append(f"max-fail-percentage {job.max_fail_percentage:g}")
    if job.max_parallel is not None:
        limits.append(f"max-parallel {job.max_parallel}")
    if limits:
        yield "  " + ", ".join(limits)
    batched = len(job.batches) > 1
    for batch in job.batches:
        indent = "  "
        if batched:
            yield f"  batch {batch.number}"
            indent = "    "
        for instance in batch.instances:
            yield from _instance(instance, indent)


def _instance(instance: PlannedInstance, indent: str) -> Iterator[str]:
    if instance.label is not None or instance.server is not None:
        what = f"server {instance.server}" if instance.server else "instance"
        if instance.matrix:
            what += " " + ", ".join(f"{k}={_inline(v)}" for k, v in instance.matrix.items())
        if not instance.live:
            what += ": no live agent, fails without running"
        yield indent + what
        indent += "  "
    if not instance.live:
        return
    for step in instance.steps:
        yield from _step(step, indent)


def _step(step: PlannedStep, indent: str) -> Iterator[str]:
    head = f"step {step.id}: {step.uses}"
    if step.name != step.id:
        head += f" ({step.name}{' ' + RUN_TIME if 'name' in step.at_run_time else ''})"
    if step.run_as:
        head += f", run-as {step.run_as}"
    if step.decision != "runs":
        head += f" [{step.decision}" + (f": {step.reason}" if step.reason else "") + "]"
    yield indent + head
    late = set(step.at_run_time)
    for path, value in _flatten("with", step.with_):
        mark = f"  {RUN_TIME}" if any(_within(path, p) or _within(p, path) for p in late) else ""
        text = value if isinstance(value, str) else json.dumps(value)
        lines = text.splitlines() or [""]
        if len(lines) == 1:
            yield f"{indent}  {path}: {lines[0]}{mark}"
        else:
            yield f"{indent}  {path}:{mark}"
            yield from (f"{indent}    {line}" for line in lines)


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _flatten(f"{prefix}.{key}", child)
    else:
        yield prefix, value


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((prefix + ".", prefix + "["))


def _inline(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
