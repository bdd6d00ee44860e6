"""Typed workflow inputs: checked and converted when a run is submitted."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ErrorItem, WorkflowValidationError
from ._messages import listing, quote
from .strict_yaml import MAX_DEPTH

if TYPE_CHECKING:
    from .models import InputSpec, Workflow

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce_value(spec: InputSpec, value: Any) -> Any:
    """Convert ``value`` (text from YAML or the CLI, or JSON from the API) to ``spec.type``."""
    kind = spec.type
    if kind == "string":
        if isinstance(value, dict | list) or value is None:
            raise ValueError(f"expected a string, got {_shown(value)}")
        text = value if isinstance(value, str) else json.dumps(value)
        if spec.options is not None and text not in spec.options:
            raise ValueError(f"expected one of {listing(spec.options)}, got {quote(text)}")
        return text
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"expected a number, got {_shown(value)}")
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            raise ValueError(f"expected a number, got {quote(value)}") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {quote(value)}")
        return int(number) if isinstance(number, float) and number.is_integer() else number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"expected true or false, got {_shown(value)}")
    expected = dict if kind == "object" else list
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except RecursionError:
            raise ValueError(f"the JSON for an {kind} is nested deeper than {MAX_DEPTH} levels") from None
        except ValueError:
            raise ValueError(f"expected JSON for an {kind}, got {quote(value)}") from None
        if _too_deep(value):
            raise ValueError(f"the JSON for an {kind} is nested deeper than {MAX_DEPTH} levels")
    if not isinstance(value, expected):
        raise ValueError(f"expected an {kind}, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "nothing" if value is None else quote(value)


def _too_deep(value: Any) -> bool:
    """Whether JSON data nests deeper than YAML may (iterative: the depth is what is in doubt)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                return True
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


def resolve_inputs(workflow: Workflow, given: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``given`` against the workflow's declared inputs and return the typed values.

    Raises :class:`WorkflowValidationError` listing every unknown, missing or mistyped input
    (line and column are 0 there: the problem is in the submitted inputs, not in the text).
    """
    errors: list[ErrorItem] = []
    resolved: dict[str, Any] = {}
    for name in given:
        if name not in workflow.inputs:
            errors.append(_input_error(name, f"unknown input (declared inputs: {listing(workflow.inputs)})"))
    for name, spec in workflow.inputs.items():
        # null means "not given", so resolving already-resolved inputs changes nothing.
        if given.get(name) is not None:
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
