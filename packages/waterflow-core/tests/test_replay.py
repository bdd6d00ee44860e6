"""Replay every recorded history in ``histories/`` against today's ``WaterflowRun``.

A failure here means a change to the interpreter would break runs already in flight: put the
change behind ``workflow.patched(...)`` (see docs/adr/0002-one-step-one-activity.md) instead of
re-recording. Regenerate the corpus only for new scenarios:
``WATERFLOW_RECORD_HISTORIES=1 pytest packages/waterflow-core/tests/test_interpreter_run.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from waterflow_core.interpreter.workflow import WaterflowRun
from waterflow_core.temporal import sandboxed_runner

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_corpus_is_not_empty() -> None:
    assert len(HISTORIES) >= 5, "the replay corpus lost its histories"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    data = json.loads(path.read_text())
    history = WorkflowHistory.from_json(f"replay-{path.stem}", data)
    replayer = Replayer(
        workflows=[WaterflowRun],
        data_converter=pydantic_data_converter,
        workflow_runner=sandboxed_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure!r}"
