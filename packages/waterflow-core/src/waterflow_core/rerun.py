"""Reruns: a new run of a finished run's snapshot that skips what succeeded there (ADR 0039).

:func:`plan_rerun` reads the original's :class:`~.runs.RunInput` and its final
:class:`~.runs.RunProgress` and returns the rerun's input: the same workflow and inputs, plus a
:class:`Rerun` naming, per job and instance, the steps not to run again with the outputs they
recorded. The interpreter reports such a step ``skipped`` with ``succeeded_in`` set and gives the
``steps`` context its recorded outputs, as if it had just succeeded; it never compensates it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from .runs import JobProgress, RunInput, RunProgress, StepProgress

StepStatus = Literal["pending", "running", "success", "failure", "skipped", "cancelled"]
"""The same as :data:`~.runs.StepStatus` (not imported from there: runs imports this module)."""

RERUN_MEMO = "rerun_of"
"""Memo key of a rerun: the id of the run it reruns (listings find a run's reruns by it)."""


class RerunError(ValueError):
    """A rerun that cannot be planned (an unknown ``from_step``); ``field`` names the request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ReusedStep(BaseModel):
    """A step a rerun does not run: it concluded in run ``run`` as recorded here."""

    run: str
    outcome: StepStatus = "success"
    """What ``steps.<id>.outcome`` reads: ``success``, ``failure`` (``continue-on-error``) or
    ``skipped`` (its ``if`` was false there)."""
    conclusion: StepStatus = "success"
    outputs: dict[str, Any] = Field(default_factory=dict)
    agent: str = ""


class Rerun(BaseModel):
    """What a rerun skips: ``steps[job][instance or ""][step id]``."""

    of: str
    """The run this one reruns."""
    failed_only: bool = False
    from_step: str | None = None
    steps: dict[str, dict[str, dict[str, ReusedStep]]] = Field(default_factory=dict)

    def reused(self, job: str, instance: str | None, step: str) -> ReusedStep | None:
        """The recorded success of ``step`` of ``job``'s ``instance``, if the rerun skips it."""
        return self.steps.get(job, {}).get(instance or "", {}).get(step)

    def whole(self, job: str, instance: str | None, step_ids: list[str]) -> bool:
        """Whether every step of the instance is skipped (it needs no agent: none runs there)."""
        skipped = self.steps.get(job, {}).get(instance or "", {})
        return bool(step_ids) and all(sid in skipped for sid in step_ids)


def plan_rerun(
    original_id: str,
    started: RunInput,
    progress: RunProgress,
    *,
    failed_only: bool = False,
    from_step: str | None = None,
) -> RunInput:
    """The input of a rerun of ``original_id`` (started with ``started``, ended as ``progress``).

    Without options nothing is skipped: the same snapshot runs again. ``failed_only`` skips every
    job instance (a fan-out job's server, or a whole job) that succeeded. ``from_step``
    (``job/step``) skips, in each instance of that job that runs, the steps before ``step`` that
    concluded ``success`` or ``skipped``, and skips the jobs it needs (directly or not) that
    succeeded. A step undone by a
    compensation of the original is never skipped: what it did is gone. Raises :class:`RerunError`.
    """
    from pydantic import ValidationError

    from .dsl.models import Workflow
    from .interpreter.dag import ancestors, step_ids

    try:
        workflow = Workflow.model_validate(started.workflow)
    except ValidationError as exc:  # a snapshot this version no longer reads (or a forged input)
        raise RerunError("workflow", f"the run's workflow cannot be read by this version: {exc.errors()[:1]}") from None
    ids = {job_id: step_ids(job.steps) for job_id, job in workflow.jobs.items()}
    resume_job, resume_index = _resume_point(from_step, ids)
    upstream = ancestors(workflow.jobs).get(resume_job, frozenset()) if resume_job else frozenset()
    undone = {(c.job, c.instance or "", c.id.removesuffix(".compensate")) for c in progress.compensations}

    plan: dict[str, dict[str, dict[str, ReusedStep]]] = {}
    for entry in _instance_entries(progress):
        own = ids.get(entry.id)
        if own is None or not any(step.status in ("success", "failure") for step in entry.steps):
            continue  # no step ran there (never started, unreachable): nothing to reuse
        succeeded = entry.conclusion == "success" or (entry.conclusion is None and entry.status == "success")
        if entry.id == resume_job and not (failed_only and succeeded):
            wanted = set(own[:resume_index])
        elif succeeded and (failed_only or entry.id in upstream):
            wanted = set(own)
        else:
            continue
        label = entry.instance or ""
        reused = {
            step.id: _reused(step, original_id)
            for step in entry.steps
            if step.id in wanted and _concluded(step) and (entry.id, label, step.id) not in undone
        }
        if reused:
            plan.setdefault(entry.id, {})[label] = reused
    rerun = Rerun(of=original_id, failed_only=failed_only, from_step=from_step, steps=plan)
    return started.model_copy(update={"rerun": rerun})


def _resume_point(from_step: str | None, ids: dict[str, list[str]]) -> tuple[str | None, int]:
    if from_step is None:
        return None, 0
    job, sep, step = from_step.partition("/")
    if not sep or job not in ids:
        known = ", ".join(sorted(ids)[:20])
        raise RerunError("from_step", f"from_step {from_step!r}: expected JOB/STEP with a job of the run ({known})")
    if step not in ids[job]:
        known = ", ".join(ids[job][:20])
        raise RerunError("from_step", f"from_step {from_step!r}: job {job} has no step {step!r} (its steps: {known})")
    return job, ids[job].index(step)


def _instance_entries(progress: RunProgress) -> list[JobProgress]:
    """The entries that list steps: a plain job's, or each instance of a fan-out job."""
    return [entry for entry in progress.jobs if entry.steps]


def _concluded(step: StepProgress) -> bool:
    """A step that need not run again: it concluded ``success`` or ``skipped`` (its ``if`` was false)."""
    return step.status in ("success", "failure", "skipped") and step.conclusion in ("success", "skipped")


def _reused(step: StepProgress, original_id: str) -> ReusedStep:
    outcome: StepStatus = step.status
    if step.status == "skipped" and step.succeeded_in is not None:  # reused by a rerun before this one
        outcome = "success"
    return ReusedStep(
        run=step.succeeded_in or original_id,
        outcome=outcome,
        conclusion=step.conclusion or step.status,
        outputs=dict(step.outputs),
        agent=step.agent,
    )
