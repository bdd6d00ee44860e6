"""The per-server result matrix as a text table (``waterflow status``): rows servers, columns steps.

The matrices come from the server (``GET /v1/workflows/{id}``, field ``matrix``): names and
errors are untrusted text, so every cell is cut and stripped of control characters (a server
named with an escape sequence must not repaint the operator's terminal).
"""

from __future__ import annotations

from collections.abc import Sequence

from waterflow_core.matrix import JobMatrix

from .node_tables import table

MAX_LABEL = 40
"""Characters of a row's server (instance) label."""
MAX_STEP = 16
"""Characters of a column's step id."""
MAX_ERROR = 100
"""Characters of a row's error (the whole message is in the step's entry)."""


def _clean(text: str, limit: int) -> str:
    printable = "".join(ch if ch.isprintable() else " " for ch in text.split("\n", 1)[0])
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


def matrix_lines(matrices: Sequence[JobMatrix], indent: str = "  ") -> list[str]:
    """One table per fan-out job: a row per server with its batch (when batched), its result,
    one cell per step (ok, failed, timed-out, skipped, cancelled, running, pending) and why it
    failed; ``[]`` without fan-out jobs."""
    lines: list[str] = []
    for matrix in matrices:
        if not matrix.rows:
            continue
        batched = any(row.batch is not None for row in matrix.rows)
        header = ["server", *(["batch"] if batched else []), "result"]
        header += [_clean(step, MAX_STEP) for step in matrix.steps] + ["error"]
        rows = [
            [
                _clean(row.instance, MAX_LABEL),
                *([str(row.batch or "-")] if batched else []),
                row.status,
                *row.cells,
                _clean(row.error or "", MAX_ERROR),
            ]
            for row in matrix.rows
        ]
        lines.append(f"{indent}matrix of job {_clean(matrix.job, MAX_LABEL)}:")
        lines += [f"{indent}  {line}" for line in table(header, rows)]
        if matrix.rows_left_out:
            lines.append(f"{indent}  … {matrix.rows_left_out} more rows not shown")
    return lines
