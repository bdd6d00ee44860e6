"""The errors of earlier attempts, as the next attempt reads them from its heartbeat details."""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.testing import ActivityEnvironment

from waterflow_agent.executor import earlier_errors
from waterflow_core.interpreter.contexts import MAX_ATTEMPT_ERROR_CHARS, MAX_ATTEMPT_ERRORS


def _read(*details: Any) -> list[str]:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_details=list(details))
    return env.run(earlier_errors)


def test_the_last_heartbeat_carries_them() -> None:
    assert _read({"lines": ["a"], "count": 1, "attempt_errors": ["first", "second"]}) == ["first", "second"]


def test_they_are_bounded_in_count_and_size() -> None:
    errors = [f"{i}:" + "x" * 5000 for i in range(30)]
    read = _read({"attempt_errors": errors})
    assert len(read) == MAX_ATTEMPT_ERRORS
    assert read[0].startswith("20:") and read[-1].startswith("29:")
    assert all(len(error) <= MAX_ATTEMPT_ERROR_CHARS + 20 for error in read)


def test_anything_else_reads_as_none() -> None:
    assert _read() == []
    assert _read("node detail") == []
    assert _read({"attempt_errors": "not a list"}) == []
    assert _read({"lines": [], "count": 0}) == []
    assert _read({"attempt_errors": [1, None]}) == ["1", "None"]
