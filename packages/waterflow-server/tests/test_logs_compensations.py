"""Logs of compensations and cancelled steps, from a run's progress."""

from __future__ import annotations

from waterflow_core.runs import JobProgress, RunProgress, StepProgress
from waterflow_server.api.logs import LogTracker, snapshot_entries


def _step(step_id: str, status: str, tail: list[str], job: str = "") -> StepProgress:
    return StepProgress.model_validate({"id": step_id, "status": status, "log_tail": tail, "job": job})


def _run(listed: bool) -> RunProgress:
    undo = _step("create.compensate", "success", ["deleting vm-42"], job="provision")
    steps = [_step("create", "success", ["created"]), _step("configure", "cancelled", ["line 1", "line 2"])]
    job = JobProgress(id="provision", steps=[*steps, undo] if listed else steps)
    return RunProgress(name="saga", status="cancelled", jobs=[job], compensations=[undo])


def test_a_compensation_listed_with_its_job_is_shown_once() -> None:
    entries = [(e.kind, e.step, e.line) for e in snapshot_entries(_run(listed=True))]
    assert entries.count(("log", "provision/create.compensate", "deleting vm-42")) == 1
    assert entries[-1] == ("step", "provision/create.compensate", "success")
    assert ("log", "provision/configure", "line 2") in entries
    assert ("step", "provision/configure", "cancelled") in entries


def test_a_compensation_missing_from_the_jobs_is_still_shown() -> None:
    entries = [(e.kind, e.step, e.line) for e in snapshot_entries(_run(listed=False))]
    assert entries[-2:] == [
        ("log", "provision/create.compensate", "deleting vm-42"),
        ("step", "provision/create.compensate", "success"),
    ]


def test_following_shows_each_compensation_once() -> None:
    tracker = LogTracker()
    first = tracker.from_progress(_run(listed=True))
    assert [e.line for e in first if e.step == "provision/create.compensate"] == ["deleting vm-42", "success"]
    assert tracker.from_progress(_run(listed=True)) == []
    assert tracker.from_progress(_run(listed=False)) == []


def test_a_compensation_on_its_fallback_queue_keeps_its_path() -> None:
    from waterflow_server.api.runs import _heartbeat_entries

    progress = _run(listed=True)
    progress.compensations[0].status = "running"
    beats = {"provision/create.compensate@web": {"lines": ["deleting"], "count": 1}}
    entries = _heartbeat_entries(LogTracker(), beats, progress)
    assert [(e.step, e.line) for e in entries] == [("provision/create.compensate", "deleting")]
    unknown = _heartbeat_entries(LogTracker(), {"other/x@y": {"lines": ["a"], "count": 1}}, progress)
    assert [e.step for e in unknown] == ["other/x@y"]
