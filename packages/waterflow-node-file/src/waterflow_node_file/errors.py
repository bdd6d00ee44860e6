"""The errors ``file/transfer`` raises, with the types and retryability exec nodes use."""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError

from waterflow_core.errors import ErrorCode


def bad_input(message: str, **details: Any) -> ApplicationError:
    """Inputs that can never work (a refused path or address, a malformed value): not retried."""
    return ApplicationError(message, *([details] if details else []), type=ErrorCode.BAD_INPUT, non_retryable=True)


def failed(message: str, *, retryable: bool, **details: Any) -> ApplicationError:
    """The transfer failed; ``retryable`` says whether another attempt may succeed.

    Connection errors and 5xx answers may pass; a checksum mismatch or a body over ``max-bytes``
    will not, so the step's retry policy is not spent on them.
    """
    return ApplicationError(
        message, *([details] if details else []), type=ErrorCode.STEP_FAILED, non_retryable=not retryable
    )
