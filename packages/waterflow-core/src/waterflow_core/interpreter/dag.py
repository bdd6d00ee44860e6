"""Jobs as a DAG: step ids, ancestors, and the status a job's ``if:`` sees.

Job results use GitHub's words: ``success``, ``failure``, ``cancelled``, ``skipped``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ..dsl.models import Job, Step


def step_ids(steps: Sequence[Step], reserved: Iterable[str] = ()) -> list[str]:
    """The id of every step: its own, or ``step-<n>`` (1-based) for steps that set none.

    A generated id never collides with a user's id (compared case-insensitively, as expressions
    compare names): ``step-2`` becomes ``step-2-2`` if a user already took ``step-2``. Nor with
    ``reserved`` ids: those a nested step list sees from outside.
    """
    taken = {s.id.lower() for s in steps if s.id} | {r.lower() for r in reserved}
    out: list[str] = []
    for index, step in enumerate(steps, start=1):
        if step.id:
            out.append(step.id)
            continue
        candidate, n = f"step-{index}", 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"step-{index}-{n}"
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def ancestors(jobs: Mapping[str, Job]) -> dict[str, frozenset[str]]:
    """Every job's transitive needs (the DAG is acyclic: the loader rejects cycles)."""
    memo: dict[str, frozenset[str]] = {}

    def visit(job_id: str) -> frozenset[str]:
        found = memo.get(job_id)
        if found is None:
            acc: set[str] = set()
            # Iterative over needs, recursive over depth; depth is bounded by the job count.
            for need in jobs[job_id].needs:
                acc.add(need)
                acc |= visit(need)
            found = memo[job_id] = frozenset(acc)
        return found

    for job_id in sorted(jobs):
        visit(job_id)
    return memo


def job_status(
    job_id: str,
    results: Mapping[str, str],
    ancestry: Mapping[str, frozenset[str]],
    *,
    run_cancelled: bool,
) -> str:
    """The status a job's ``if:`` sees: ``cancelled`` once the run is cancelled, ``failure`` when
    any ancestor failed (transitively, as GitHub's ``failure()`` for jobs), else ``success``."""
    if run_cancelled:
        return "cancelled"
    if any(results.get(a) == "failure" for a in sorted(ancestry[job_id])):
        return "failure"
    return "success"


def needs_succeeded(job: Job, results: Mapping[str, str]) -> bool:
    """The implicit ``success()`` of a job ``if``: every direct need concluded ``success``.

    A skipped need skips its dependants too unless they use a status function (GitHub).
    """
    return all(results.get(need) == "success" for need in job.needs)
