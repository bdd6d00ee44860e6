"""What a schedule is asked to be: the request body of ``POST /v1/schedules`` and its checks.

Cron expressions are checked here, field by field, so a mistake is a 422 naming ``cron[i]`` and
the cron field (Temporal would refuse it too, with a message that names neither).
"""

from __future__ import annotations

import re
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from temporalio.client import ScheduleOverlapPolicy

from waterflow_core.dsl.durations import parse_duration
from waterflow_core.errors import ErrorItem

from .problems import APIError, bad_request

Overlap = Literal["skip", "buffer-one", "buffer-all", "cancel-other", "allow-all"]
OVERLAP_POLICIES: dict[str, ScheduleOverlapPolicy] = {
    "skip": ScheduleOverlapPolicy.SKIP,
    "buffer-one": ScheduleOverlapPolicy.BUFFER_ONE,
    "buffer-all": ScheduleOverlapPolicy.BUFFER_ALL,
    "cancel-other": ScheduleOverlapPolicy.CANCEL_OTHER,
    "allow-all": ScheduleOverlapPolicy.ALLOW_ALL,
}
"""Overlap policies offered. Temporal's TERMINATE_OTHER is not: a terminated run never compensates."""
OVERLAP_NAMES = {policy: name for name, policy in OVERLAP_POLICIES.items()}

ALIASES = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_DAYS = {name: number for number, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_ITEM = re.compile(r"^(?P<range>\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")
MAX_CRON = 10
MAX_NOTE = 1000
MIN_INTERVAL_SECONDS = 1.0
BODY_KEYS = frozenset({"workflow", "inputs", "id", "cron", "interval", "timezone", "overlap", "paused", "note"})


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a 5-field cron expression (or an ``@daily``-style alias); ``None`` if it is."""
    text = expression.strip().lower()
    if text.startswith("@"):
        return (
            None
            if text in ALIASES
            else f"unknown alias {expression.strip()!r} (use one of {', '.join(sorted(ALIASES))})"
        )
    fields = text.split()
    if len(fields) != 5:
        return f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), not {len(fields)}"
    for value, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for item in value.split(","):
            problem = _item_problem(item, low, high, names)
            if problem:
                return f"{name} field {value!r}: {problem}"
    return None


def _item_problem(item: str, low: int, high: int, names: dict[str, int]) -> str | None:
    match = _ITEM.match(item)
    if match is None:
        return f"{item!r} is not a value, a range (a-b), '*' or one of them with /step"
    if match["step"] is not None and int(match["step"]) == 0:
        return "a step of 0 never advances"
    if match["range"] == "*":
        return None
    for bound in match["range"].split("-"):
        number = names.get(bound) if not bound.isdigit() else int(bound)
        if number is None:
            return f"{bound!r} is not a number" + (f" or a name ({', '.join(names)})" if names else "")
        if not low <= number <= high:
            return f"{bound} is out of range {low}-{high}"
    return None


def _invalid(path: str, message: str) -> APIError:
    return APIError(
        422, "invalid_schedule", f"{path}: {message}", [ErrorItem(line=0, column=0, path=path, message=message)]
    )


class ScheduleRequest:
    """A checked ``POST /v1/schedules`` body (the workflow and inputs are checked by the run service)."""

    def __init__(self, document: dict[str, Any]) -> None:
        unknown = sorted(set(document) - BODY_KEYS)
        if unknown:
            raise bad_request(
                f"unknown key(s) in the request body: {', '.join(unknown)} (allowed: {', '.join(sorted(BODY_KEYS))})"
            )
        workflow = document.get("workflow")
        if not isinstance(workflow, str) or not workflow.strip():
            raise bad_request("'workflow' must be the workflow YAML as a string")
        self.workflow = workflow
        inputs = document.get("inputs")
        if inputs is not None and not isinstance(inputs, dict):
            raise bad_request("'inputs' must be an object")
        self.inputs: dict[str, Any] = inputs or {}
        schedule_id = document.get("id")
        if schedule_id is not None and not isinstance(schedule_id, str):
            raise bad_request("'id' must be a string")
        self.id: str | None = schedule_id
        self.cron = self._cron(document.get("cron"))
        self.interval = self._interval(document.get("interval"))
        if not self.cron and self.interval is None:
            raise _invalid("cron", "give a cron expression, an interval, or both")
        self.timezone = self._timezone(document.get("timezone", "UTC"))
        overlap = document.get("overlap", "skip")
        if overlap not in OVERLAP_POLICIES:
            raise _invalid("overlap", f"must be one of {', '.join(OVERLAP_POLICIES)}, not {overlap!r}")
        self.overlap: str = overlap
        paused = document.get("paused", False)
        if not isinstance(paused, bool):
            raise _invalid("paused", "must be true or false")
        self.paused = paused
        note = document.get("note", "")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise _invalid("note", f"must be text of at most {MAX_NOTE} characters")
        self.note = note

    @staticmethod
    def _cron(value: Any) -> list[str]:
        if value is None:
            return []
        expressions = [value] if isinstance(value, str) else value
        if not isinstance(expressions, list) or not all(isinstance(item, str) for item in expressions):
            raise _invalid("cron", "must be a cron expression or a list of them")
        if len(expressions) > MAX_CRON:
            raise _invalid("cron", f"at most {MAX_CRON} expressions")
        for index, expression in enumerate(expressions):
            problem = cron_problem(expression)
            if problem:
                raise _invalid(f"cron[{index}]", problem)
        return [" ".join(expression.split()) for expression in expressions]

    @staticmethod
    def _interval(value: Any) -> float | None:
        if value is None:
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise _invalid("interval", str(exc)) from None
        if seconds < MIN_INTERVAL_SECONDS:
            raise _invalid("interval", f"must be at least {MIN_INTERVAL_SECONDS:g}s")
        return seconds

    @staticmethod
    def _timezone(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise _invalid("timezone", "must be an IANA time zone name such as UTC or Europe/Berlin")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise _invalid(
                "timezone", f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)"
            ) from None
        return value


__all__ = ["OVERLAP_NAMES", "OVERLAP_POLICIES", "Overlap", "ScheduleRequest", "cron_problem"]
