"""Typed workflow inputs: checked and converted when a run is submitted."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ErrorItem, WorkflowValidationError

if TYPE_CHECKING:
    from .models import InputSpec, Workflow

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce_value(spec: InputSpec, value: Any) -> Any:
    """Convert ``value`` (text from YAML or the CLI, or JSON from the API) to ``spec.type``."""
    kind = spec.type
    if kind == "string":
        if isinstance(value, dict | list) or value is None:
            raise ValueError("expected a string")
        text = value if isinstance(value, str) else json.dumps(value)
        if spec.options is not None and text not in spec.options:
            raise ValueError(f"expected one of {', '.join(spec.options)}, got {text!r}")
        return text
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("expected a number")
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {value!r}")
        return int(number) if isinstance(number, float) and number.is_integer() else number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"expected true or false, got {value!r}")
    expected = dict if kind == "object" else list
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"expected JSON for an {kind}, got {value!r}") from None
    if not isinstance(value, expected):
        raise ValueError(f"expected an {kind}")
    return value


def resolve_inputs(workflow: Workflow, given: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``given`` against the workflow's declared inputs and return the typed values.

    Raises :class:`WorkflowValidationError` listing every unknown, missing or mistyped input
    (line and column are 0 there: the problem is in the submitted inputs, not in the text).
    """
    errors: list[ErrorItem] = []
    resolved: dict[str, Any] = {}
    for name in given:
        if name not in workflow.inputs:
            known = ", ".join(workflow.inputs) or "none"
            errors.append(_input_error(name, f"unknown input (declared inputs: {known})"))
    for name, spec in workflow.inputs.items():
        if name in given:
            try:
                resolved[name] = coerce_value(spec, given[name])
            except ValueError as exc:
                errors.append(_input_error(name, str(exc)))
        elif spec.default is not None:
            resolved[name] = spec.default
        elif spec.required:
            errors.append(_input_error(name, "required input is missing"))
        else:
            resolved[name] = None
    if errors:
        raise WorkflowValidationError(errors)
    return resolved


def _input_error(name: str, message: str) -> ErrorItem:
    return ErrorItem(line=0, column=0, path=f"inputs.{name}", message=message)
