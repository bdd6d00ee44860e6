"""The errors the Docker nodes raise: Temporal ``ApplicationError`` types users can match on."""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError

from waterflow_core.errors import ErrorCode

#: Docker itself is missing or unreachable on the agent (not the step's fault).
DOCKER_UNAVAILABLE = "WaterflowDockerUnavailable"


class DockerUnavailable(Exception):
    """No usable Docker on this agent; ``retryable`` says whether waiting may fix it."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable

    def to_application_error(self) -> ApplicationError:
        """The step failure this becomes."""
        return ApplicationError(str(self), type=DOCKER_UNAVAILABLE, non_retryable=not self.retryable)


def bad_input(message: str, **details: Any) -> ApplicationError:
    """Inputs that can never work (an unknown container, a refused path, a malformed value): not retried."""
    return ApplicationError(message, *([details] if details else []), type=ErrorCode.BAD_INPUT, non_retryable=True)


def failed(message: str, *details: Any, retryable: bool = True) -> ApplicationError:
    """The step failed; by default another attempt (the step's ``retry:``) may succeed."""
    return ApplicationError(message, *details, type=ErrorCode.STEP_FAILED, non_retryable=not retryable)
