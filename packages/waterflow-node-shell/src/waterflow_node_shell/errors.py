"""The errors exec nodes raise besides a failed command (see :mod:`.execution`)."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from waterflow_core.errors import ErrorCode


def bad_input(message: str) -> ApplicationError:
    """A step that can never run as written on this agent (missing script, unknown program): not retried."""
    return ApplicationError(message, type=ErrorCode.BAD_INPUT, non_retryable=True)
