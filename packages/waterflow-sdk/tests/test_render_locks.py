"""``status`` shows what a run (or a job) waits for under ``concurrency:`` (ADR 0040)."""

from __future__ import annotations

from waterflow_sdk.models import Run
from waterflow_sdk.render import run_lines

WAITING = {"key": "deploy-prod", "policy": "queue", "holder": "run-1", "since": "2026-11-30T20:00:00Z"}


def test_a_waiting_run_says_for_which_key_and_behind_whom() -> None:
    run = Run.model_validate({"id": "run-2", "name": "deploy", "status": "running", "waiting_for_lock": WAITING})
    assert "  waiting for lock 'deploy-prod' (queue) held by run run-1 since 2026-11-30T20:00:00Z" in run_lines(run)


def test_a_waiting_job_says_it_under_its_job() -> None:
    job = {"id": "migrate", "runs_on": "db", "waiting_for_lock": {"key": "schema", "policy": "refuse"}}
    run = Run.model_validate({"id": "run-2", "status": "running", "jobs": [job]})
    lines = run_lines(run)
    assert lines[lines.index("  job migrate (db) pending") + 1] == "    waiting for lock 'schema' (refuse)"


def test_a_run_without_locks_shows_no_lock_line() -> None:
    run = Run.model_validate({"id": "run-2", "status": "running", "jobs": [{"id": "a"}]})
    assert not [line for line in run_lines(run) if "lock" in line]
