"""Per-run secret sets: shared by the steps of a run, bounded in number and age."""

from __future__ import annotations

from datetime import timedelta

import pytest

from waterflow_agent.masking import SecretMasker
from waterflow_agent.runsecrets import RunSecrets

pytestmark = pytest.mark.unit


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_steps_of_a_run_share_its_set() -> None:
    runs = RunSecrets(timedelta(hours=1))
    first_step = runs.for_run("wf-1")
    first_step.add(["token-of-run-1"])
    later_step = SecretMasker(runs.for_run("wf-1"))
    assert later_step.text("cat says token-of-run-1") == "cat says ***"
    other_run = SecretMasker(runs.for_run("wf-2"))
    assert other_run.text("token-of-run-1") == "token-of-run-1"


def test_a_run_expires_ttl_after_its_last_step() -> None:
    clock = Clock()
    runs = RunSecrets(timedelta(minutes=10), clock=clock)
    runs.for_run("wf").add(["token-value"])
    clock.now += 9 * 60
    assert len(runs.for_run("wf")) == 1  # a step 9 minutes later: still there, and refreshed
    clock.now += 9 * 60
    assert "wf" in runs
    clock.now += 10 * 60
    assert "wf" not in runs
    assert len(runs.for_run("wf")) == 0


def test_least_recently_used_runs_go_first() -> None:
    runs = RunSecrets(timedelta(hours=1), max_runs=2)
    runs.for_run("a").add(["value-a"])
    runs.for_run("b")
    runs.for_run("a")  # a step of run a: now b is the oldest
    runs.for_run("c")
    assert "a" in runs and "c" in runs and "b" not in runs
    assert len(runs) == 2


def test_values_per_run_are_bounded() -> None:
    runs = RunSecrets(timedelta(hours=1), max_values=1)
    assert runs.for_run("wf").add(["value-one"])
    assert not runs.for_run("wf").add(["value-two"])
