"""The state model behind ``--watch``, fed by hand-made stream entries and run reads, and how
the plain lines and the rich view show it (no terminal, no server, no clock)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console

from waterflow_sdk.live_model import LiveModel, StateChange, plain_lines, printable
from waterflow_sdk.live_view import HINT, render
from waterflow_sdk.models import LogEntry, Run

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def step(id: str, status: str = "pending", **fields: Any) -> dict[str, Any]:
    return {"id": id, "status": status, **fields}


def run(status: str = "running", steps: list[dict[str, Any]] | None = None, **fields: Any) -> Run:
    job = {"id": "deploy", "runs_on": "web", "status": status, "steps": steps or []}
    return Run.model_validate({"id": "r-1", "name": "ship", "status": status, "jobs": [job], **fields})


def log(path: str, line: str) -> LogEntry:
    return LogEntry(kind="log", step=path, line=line)


def event(path: str, status: str) -> LogEntry:
    return LogEntry(kind="step", step=path, status=status, line=status)


def draw(model: LiveModel, now: datetime, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system="truecolor")
    console.print(render(model, now))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def plain(model: LiveModel, now: datetime) -> list[str]:
    return plain_lines(model.changes(), now)


def test_a_step_runs_prints_and_succeeds() -> None:
    model = LiveModel("r-1")
    model.update(run(steps=[step("migrate"), step("restart")]), at(0))
    assert plain(model, at(0)) == []

    assert model.feed(event("deploy/migrate", "running"), at(1)) is True  # read the run again
    model.update(run(steps=[step("migrate", "running", started_at=at(0.5)), step("restart")]), at(1))
    assert model.feed(log("deploy/migrate", "applying 0042"), at(2)) is False
    assert plain(model, at(2)) == ["[deploy/migrate] running", "[deploy/migrate] | applying 0042"]
    assert [s.path for s in model.running()] == ["deploy/migrate"]
    assert model.steps["deploy/migrate"].elapsed(at(3)) == 2.5  # counted from the server's start

    assert model.feed(event("deploy/migrate", "success"), at(4)) is True
    done = step("migrate", "success", agent="web-1", attempt=2, started_at=at(0.5), finished_at=at(3.5))
    model.update(run(steps=[done, step("restart")]), at(4))
    assert plain(model, at(9)) == ["[deploy/migrate] succeeded on web-1 (attempt 2) in 3.0s"]
    assert model.running() == []
    assert not model.done
    model.update(run("succeeded", steps=[done, step("restart", "skipped")]), at(10))
    assert model.done


def test_a_read_ahead_of_the_stream_never_steps_back_and_waits_for_the_last_lines() -> None:
    model = LiveModel("r-1")
    model.update(run(steps=[step("build", "running", started_at=at(0))]), at(1))
    # The read already says success; the stream still has the step's last line and its events.
    model.update(run(steps=[step("build", "success", started_at=at(0), finished_at=at(2))]), at(3))
    assert [type(c) for c in model.changes()] == [StateChange]  # only "running" so far
    assert model.feed(event("deploy/build", "running"), at(3)) is False  # not a step back
    model.feed(log("deploy/build", "last line"), at(3))
    assert model.feed(event("deploy/build", "success"), at(3)) is False
    assert plain(model, at(3)) == ["[deploy/build] | last line", "[deploy/build] succeeded in 2.0s"]
    assert model.steps["deploy/build"].status == "success"


def test_settle_announces_the_ends_the_stream_never_reached() -> None:
    model = LiveModel("r-1")
    model.update(run(steps=[step("a", "failure", error="exit 3\nno luck")]), at(1))
    assert plain(model, at(1)) == []
    model.settle()
    assert plain(model, at(1)) == ["[deploy/a] failed: exit 3", "    no luck"]
    model.settle()
    assert plain(model, at(1)) == []  # each change once


def test_fan_out_instances_and_compensations() -> None:
    model = LiveModel("r-1")
    jobs = [
        {"id": "deploy", "instance": None, "status": "running", "runs_on": "web"},
        {
            "id": "deploy",
            "instance": "eu",
            "status": "running",
            "runs_on": "web",
            "steps": [step("create", "success"), step("create.compensate", "running", name="compensate create")],
        },
    ]
    model.update(Run.model_validate({"id": "r-1", "status": "running", "jobs": jobs}), at(0))
    assert [job.label for job in model.jobs] == ["deploy", "deploy#eu"]
    undo = model.steps["deploy/create.compensate#eu"]
    assert undo.compensation and not model.steps["deploy/create#eu"].compensation
    model.feed(log("deploy/create.compensate#eu", "deleting vm-42"), at(1))
    assert plain(model, at(1)) == [
        "[deploy/create.compensate#eu] compensation running",
        "[deploy/create.compensate#eu] | deleting vm-42",
    ]
    drawn = draw(model, at(1))
    assert "deploy#eu" in drawn and "↺ compensate create" in drawn and "deleting vm-42" in drawn


def test_a_compensation_the_run_lists_only_on_its_own_is_shown_under_its_job() -> None:
    model = LiveModel("r-1")
    undo = step("create.compensate", "failure", job="deploy", agent="web-1", error="exit 1")
    model.update(run("failed", steps=[step("create", "success")], compensations=[undo]), at(0))
    assert list(model.steps) == ["deploy/create", "deploy/create.compensate"]
    view = model.steps["deploy/create.compensate"]
    assert view.compensation and view.job == "deploy" and view.agent == "web-1"
    model.settle()
    assert plain(model, at(0))[-1] == "[deploy/create.compensate] compensation failed on web-1: exit 1"
    assert _row(draw(model, at(0)), "↺") == ["↺", "create.compensate", "failed", "web-1"]


def test_the_stream_may_name_a_step_before_any_read_does() -> None:
    model = LiveModel("r-1")
    assert model.feed(event("deploy/early", "running"), at(0)) is True
    model.feed(log("deploy/early", "hi"), at(1))
    assert plain(model, at(1)) == ["[deploy/early] running", "[deploy/early] | hi"]
    assert model.steps["deploy/early"].elapsed(at(3)) == 3.0  # counted from when it was seen
    model.update(run(steps=[step("other")]), at(2))
    assert list(model.steps) == ["deploy/other", "deploy/early"]
    assert "early" in draw(model, at(2))


def test_the_tail_keeps_the_last_lines() -> None:
    model = LiveModel("r-1")
    model.update(run(steps=[step("s", "running")]), at(0))
    for n in range(8):
        model.feed(log("deploy/s", f"line {n}"), at(0))
    assert list(model.steps["deploy/s"].tail) == [f"line {n}" for n in range(3, 8)]
    drawn = draw(model, at(0))
    assert "line 7" in drawn and "line 2" not in drawn


def test_the_view_shows_state_agent_attempt_elapsed_and_the_running_tail() -> None:
    model = LiveModel("r-1")
    steps = [
        step("migrate", "success", agent="web-1", attempt=1, started_at=at(0), finished_at=at(4)),
        step("restart", "running", started_at=at(4)),
    ]
    model.update(run(steps=steps, started_at=at(0)), at(5))
    model.feed(log("deploy/restart", "waiting for port 80"), at(5))
    text = draw(model, at(7))
    assert "run r-1  ship  running  7.0s" in _strip(text)
    assert "job deploy (web)  running" in _strip(text)
    assert _row(text, "migrate") == ["migrate", "succeeded", "web-1", "#1", "4.0s"]
    assert _row(text, "restart") == ["restart", "running", "-", "3.0s"]
    assert "│ waiting for port 80" in _strip(text)
    assert HINT in _strip(text)

    failed = step("restart", "failure", error="boom\nmore")
    model.update(run("failed", steps=[steps[0], failed], error="job deploy: boom"), at(8))
    text = _strip(draw(model, at(8)))
    assert "waiting for port 80" not in text  # the tail is for running steps
    assert "error: boom" in text and "more" not in text
    assert "error: job deploy: boom" in text
    assert HINT not in text  # the run is over


def test_hostile_output_reaches_the_terminal_as_text() -> None:
    """A step's line can hold escape sequences (set the title, write the clipboard) or rich
    markup: both must arrive as visible text, never be interpreted."""
    model = LiveModel("r-1")
    model.update(run(steps=[step("s", "running", agent="evil\x1b[2J")]), at(0))
    model.feed(log("deploy/s", "\x1b]0;pwned\x07 \x1b]52;c;ZXZpbA==\x07 [bold red]x[/] \x9b2J"), at(0))
    drawn = draw(model, at(0))
    assert "\x1b]" not in drawn and "\x07" not in drawn and "\x9b" not in drawn and "\x1b[2J" not in drawn
    assert "[bold red]x[/]" in drawn
    assert "\\x1b]0;pwned\\x07" in drawn
    lines = plain(model, at(0))
    assert lines[-1] == "[deploy/s] | \\x1b]0;pwned\\x07 \\x1b]52;c;ZXZpbA==\\x07 [bold red]x[/] \\x9b2J"
    assert printable("tab\tstays") == "tab\tstays"


def _strip(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _row(text: str, name: str) -> list[str]:
    for line in _strip(text).splitlines():
        words = line.split()
        if words and words[0] == name:
            return words
    raise AssertionError(f"no row {name!r} in:\n{_strip(text)}")


FLEET_MATRIX = {
    "job": "deploy",
    "steps": ["stop", "start"],
    "rows": [
        {"instance": "web-1", "status": "ok", "cells": ["ok", "ok"]},
        {"instance": "web-2", "status": "running", "cells": ["ok", "running"]},
        {"instance": "web-\x1b]0;pwned\x07", "status": "failed", "cells": ["failed", "skipped"], "error": "boom"},
    ],
}


def test_the_view_shows_the_matrix_of_a_fan_out_job() -> None:
    model = LiveModel("r-1")
    model.update(run(steps=[step("stop", "success")]), at(0))
    assert model.matrix == [] and "matrix of job" not in draw(model, at(0))

    model.update(run(steps=[step("stop", "success")], matrix=[FLEET_MATRIX]), at(1))
    drawn = draw(model, at(1), width=120)
    assert "matrix of job deploy:" in drawn
    rows = [line for line in drawn.splitlines() if "web-" in line]
    assert len(rows) == 3
    assert re.search(r"web-1\s+ok\s+ok\s+ok", rows[0]) and re.search(r"web-2\s+running\s+ok\s+running", rows[1])
    assert "failed" in rows[2] and "boom" in rows[2]
    assert "\x1b]0;" not in drawn and "\x07" not in drawn  # a server's name cannot retitle the terminal
