"""Schedules in the SDK: the models of ``/v1/schedules`` answers and the calls both clients send."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._protocol import Call

SCHEDULES_PATH = "/v1/schedules"
OVERLAP_POLICIES = ("skip", "buffer-one", "buffer-all", "cancel-other", "allow-all")

__all__ = ["OVERLAP_POLICIES", "Schedule", "ScheduleTriggered", "ScheduledRun"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ScheduledRun(_Model):
    """A run a schedule started: its run id (the schedule id and the scheduled time) and when."""

    id: str
    scheduled_at: datetime
    started_at: datetime
    status_url: str = ""


class Schedule(_Model):
    """A schedule: when it fires (``cron``, ``interval_seconds``, ``timezone``), its overlap policy,
    whether it is paused, its next fire times and the runs it started recently.

    ``runs_started`` and ``inputs`` are only filled by :meth:`Client.get_schedule` (and create,
    pause, unpause); listings leave them ``None``.
    """

    id: str
    name: str = ""
    cron: list[str] = Field(default_factory=list)
    interval_seconds: float | None = None
    timezone: str = "UTC"
    overlap: str = "skip"
    paused: bool = False
    note: str = ""
    next_runs: list[datetime] = Field(default_factory=list)
    recent_runs: list[ScheduledRun] = Field(default_factory=list)
    runs_started: int | None = None
    inputs: dict[str, Any] | None = None
    created_at: datetime | None = None
    url: str = ""


class ScheduleTriggered(_Model):
    """A run was requested from the schedule now; it shows in ``recent_runs`` once started."""

    id: str
    url: str = ""


def _path(schedule_id: str, suffix: str = "") -> str:
    from urllib.parse import quote

    return f"{SCHEDULES_PATH}/{quote(schedule_id, safe='')}{suffix}"


def create_call(
    text: str,
    *,
    cron: str | Sequence[str] | None,
    interval: str | float | None,
    inputs: Mapping[str, Any] | None,
    schedule_id: str | None,
    timezone: str,
    overlap: str,
    paused: bool,
    note: str,
) -> Call:
    """``POST /v1/schedules``."""
    body: dict[str, Any] = {"workflow": text, "timezone": timezone, "overlap": overlap, "paused": paused}
    if cron:
        body["cron"] = cron if isinstance(cron, str) else list(cron)
    if interval is not None:
        body["interval"] = interval
    if inputs:
        body["inputs"] = dict(inputs)
    if schedule_id:
        body["id"] = schedule_id
    if note:
        body["note"] = note
    return Call("POST", SCHEDULES_PATH, json=body)


def list_call() -> Call:
    """``GET /v1/schedules``."""
    return Call("GET", SCHEDULES_PATH)


def get_call(schedule_id: str) -> Call:
    """``GET /v1/schedules/{id}``."""
    return Call("GET", _path(schedule_id))


def action_call(schedule_id: str, action: str) -> Call:
    """``POST /v1/schedules/{id}/pause|unpause|trigger`` (pause and unpause are idempotent)."""
    return Call("POST", _path(schedule_id, f"/{action}"), idempotent=action != "trigger")


def delete_call(schedule_id: str) -> Call:
    """``DELETE /v1/schedules/{id}``."""
    return Call("DELETE", _path(schedule_id))
