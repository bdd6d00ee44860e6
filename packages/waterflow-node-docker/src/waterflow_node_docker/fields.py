"""Field types and checks shared by the Docker nodes' inputs.

Every name that reaches a command line or an Engine API path is checked here: it must start with
a letter or a digit (so it can never be read as an option such as ``--privileged``) and contain
only the characters Docker itself allows, so it cannot smuggle ``/`` or ``?`` into an API path.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from waterflow_core.dsl import parse_duration
from waterflow_core.shellsafe import to_shell_string

#: Container names and ids, compose service names (Docker's own rule, leading character included).
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: Compose project names as compose v2 accepts them (v1 accepts a superset).
PROJECT_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
#: ``user``, ``user:group``, ``uid`` or ``uid:gid``.
USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?")
MAX_NAME = 255


def _text(value: object) -> object:
    # Values rendered from a single $<< >> keep their type; argv and environment are text.
    return value if isinstance(value, str) else to_shell_string(value)


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    return value


def name_check(what: str) -> AfterValidator:
    """A validator refusing anything but a Docker-style name (``what`` names it in the message)."""

    def check(value: str) -> str:
        if len(value) > MAX_NAME or not NAME_RE.fullmatch(value):
            raise ValueError(
                f"{what} {value!r} is not valid: use letters, digits, '_', '.', '-', starting with a letter "
                "or digit (a leading '-' would be read as an option)"
            )
        return value

    return AfterValidator(check)


def _project(value: str) -> str:
    if len(value) > MAX_NAME or not PROJECT_RE.fullmatch(value):
        raise ValueError(
            f"project {value!r} is not valid: use lower-case letters, digits, '_' and '-', starting with a "
            "letter or digit"
        )
    return value


def _user(value: str) -> str:
    if not USER_RE.fullmatch(value):
        raise ValueError(f"user {value!r} is not valid: use name, name:group, uid or uid:gid")
    return value


def _env(env: dict[str, str]) -> dict[str, str]:
    for key in env:
        if not key or "=" in key or "\0" in key:
            raise ValueError(f"variable name {key!r} is not valid: it must be non-empty, without '=' or NUL")
    for key, value in env.items():
        if "\0" in value:
            raise ValueError(f"the value of {key} contains a NUL character")
    return env


def _seconds(value: object) -> float:
    return parse_duration(value)


def _seconds_or_zero(value: object) -> float:
    # Durations are positive; a stop grace period of 0 (kill at once) is meaningful too.
    text = str(value).strip()
    if text in ("0", "0s", "0ms", "0.0"):
        return 0.0
    return parse_duration(value)


Text = Annotated[str, BeforeValidator(_text), AfterValidator(_no_nul)]
"""A string; numbers and booleans from a single ``$<< >>`` are coerced like GitHub does."""
Env = Annotated[dict[str, Text], AfterValidator(_env)]
ContainerName = Annotated[str, name_check("container")]
ServiceName = Annotated[str, name_check("service")]
Project = Annotated[str, AfterValidator(_project)]
User = Annotated[str, AfterValidator(_user)]
Seconds = Annotated[float, BeforeValidator(_seconds)]
GracePeriod = Annotated[float, BeforeValidator(_seconds_or_zero)]
"""A duration that may be zero."""
