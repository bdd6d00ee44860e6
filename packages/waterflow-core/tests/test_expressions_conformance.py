"""GitHub's own expression test vectors, one test per case.

The vectors live outside the repository, in ``../shared/conformance/gha-expressions`` next to
the checkout; ``WATERFLOW_GHA_VECTORS`` (or the older ``WATERFLOW_CONFORMANCE_DIR``) points
elsewhere, at that directory or at one that contains it. Where the directory does not exist (a
clone with nothing beside it) the vectors are skipped with the reason; CI has them. A directory
that exists but holds no vectors fails: that is a broken setup, not a missing one.

Each file maps a group name to cases ``{expr, contexts?, result: {kind, value}}`` or
``{expr, contexts?, err: {kind, value}}`` where ``err.value`` is part of the message. As in
GitHub's harness, the only named values an expression may use are the case's contexts. Cases
with ``options.skip`` are skipped, as the format allows; ``test_expressions_limits.py`` covers
what they test.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from waterflow_core.errors import ExpressionError
from waterflow_core.expressions import compile_expression

_KINDS = {
    type(None): "Null", bool: "Boolean", int: "Number", float: "Number",
    str: "String", list: "Array", dict: "Object",
}


def _directory() -> Path:
    """Where GitHub's vectors are; the same lookup as in test_expressions_fastparse.py."""
    override = os.environ.get("WATERFLOW_GHA_VECTORS") or os.environ.get("WATERFLOW_CONFORMANCE_DIR")
    if override:
        root = Path(override)
        nested = root / "gha-expressions"
        return nested if nested.is_dir() else root
    return Path(__file__).parents[3].parent / "shared" / "conformance" / "gha-expressions"


def _missing_reason(directory: Path) -> str:
    return (
        f"GitHub expression vectors not found at {directory}: they live in shared/ beside the checkout"
        " (CI has them); set WATERFLOW_GHA_VECTORS to run them from elsewhere"
    )


def _cases() -> list[Any]:
    directory = _directory()
    if not directory.is_dir():
        return [pytest.param(None, id="vectors-missing", marks=pytest.mark.skip(reason=_missing_reason(directory)))]
    files = sorted(directory.glob("*.json"))
    if not files:
        return [pytest.param(None, id="vectors-empty")]
    params = []
    for path in files:
        for group, cases in json.loads(path.read_text(encoding="utf-8")).items():
            for number, case in enumerate(cases):
                skip = case.get("options", {}).get("skip")
                marks = [pytest.mark.skip(reason=f"options.skip: {skip}")] if skip else []
                params.append(pytest.param(case, id=f"{path.stem}/{group}/{number}", marks=marks))
    return params


def _same(actual: Any, expected: Any) -> bool:
    """Equal values of the same kinds, all the way down (``True`` is not ``1`` here)."""
    if _KINDS.get(type(actual)) != _KINDS.get(type(expected)):
        return False
    if isinstance(actual, list):
        return len(actual) == len(expected) and all(map(_same, actual, expected))
    if isinstance(actual, dict):
        return actual.keys() == expected.keys() and all(_same(actual[k], expected[k]) for k in actual)
    if isinstance(actual, float) and math.isnan(actual):
        return isinstance(expected, float) and math.isnan(expected)
    return bool(actual == expected)


@pytest.mark.parametrize("case", _cases())
def test_github_vector(case: dict[str, Any] | None) -> None:
    if case is None:
        pytest.fail(f"no GitHub expression vectors (*.json) in {_directory()}; set WATERFLOW_GHA_VECTORS")
    contexts = case.get("contexts", {})

    def run() -> Any:
        return compile_expression(case["expr"], allowed_contexts=contexts.keys()).evaluate(contexts)

    if "err" in case:
        with pytest.raises(ExpressionError) as raised:
            run()
        assert raised.value.kind == case["err"]["kind"], raised.value.message
        assert case["err"]["value"] in raised.value.message
    else:
        expected = case["result"]
        value = run()
        assert _KINDS.get(type(value)) == expected["kind"], value
        assert _same(value, expected["value"]), value
