"""``matrix_lines``: the per-server result matrix as ``waterflow status`` prints it."""

from __future__ import annotations

import pytest

from waterflow_core.matrix import JobMatrix, MatrixRow
from waterflow_sdk.matrix_table import matrix_lines

pytestmark = pytest.mark.unit


def test_rows_are_servers_and_columns_are_steps() -> None:
    matrix = JobMatrix(
        job="deploy",
        steps=["up", "check"],
        rows=[
            MatrixRow(instance="web-01", batch=1, status="ok", cells=["ok", "ok"]),
            MatrixRow(
                instance="web-02",
                batch=2,
                status="timed-out",
                cells=["timed-out", "skipped"],
                error="step deploy/up#web-02 failed: timed out after 2s",
            ),
            MatrixRow(instance="web-03", batch=3, status="skipped", cells=["skipped", "skipped"]),
        ],
    )
    assert matrix_lines([matrix]) == [
        "  matrix of job deploy:",
        "    server  batch  result     up         check    error",
        "    web-01  1      ok         ok         ok",
        "    web-02  2      timed-out  timed-out  skipped  step deploy/up#web-02 failed: timed out after 2s",
        "    web-03  3      skipped    skipped    skipped",
    ]


def test_no_batch_column_without_batches_and_left_out_rows_are_counted() -> None:
    matrix = JobMatrix(
        job="check",
        steps=["probe"],
        rows=[MatrixRow(instance="a", status="failed", cells=["failed"], error="boom")],
        rows_left_out=4,
    )
    assert matrix_lines([matrix], indent="") == [
        "matrix of job check:",
        "  server  result  probe   error",
        "  a       failed  failed  boom",
        "  … 4 more rows not shown",
    ]
    assert matrix_lines([JobMatrix(job="empty")]) == []


def test_hostile_names_cannot_drive_the_terminal() -> None:
    evil = "web\x1b]0;pwned\x07-1\nsecond line"
    matrix = JobMatrix(job="j", steps=["s" * 50], rows=[MatrixRow(instance=evil, status="ok", cells=["ok"])])
    text = "\n".join(matrix_lines([matrix]))
    assert "\x1b" not in text and "\x07" not in text and "second line" not in text
    assert "web ]0;pwned -1" in text
    assert "s" * 15 + "…" in text and "s" * 16 not in text
