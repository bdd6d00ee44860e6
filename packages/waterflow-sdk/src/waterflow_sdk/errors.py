"""Exceptions of the SDK: the server said no, or the server could not be reached."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from waterflow_core.errors import ErrorItem, WaterflowError

__all__ = ["RunTimeoutError", "WaterflowAPIError", "WaterflowConnectionError", "WaterflowSDKError"]


class WaterflowSDKError(WaterflowError):
    """Base class of the SDK's errors."""


class WaterflowAPIError(WaterflowSDKError):
    """The server answered with an error status.

    ``status`` is the HTTP status, ``code`` the server's machine-readable code
    (``invalid_workflow``, ``not_found``, ``conflict``...), ``errors`` the placed problems
    (``line``, ``column``, ``path``, ``message``) when the error concerns a workflow text.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str = "",
        errors: Sequence[ErrorItem] = (),
        body: Any = None,
    ) -> None:
        self.status = status
        self.message = message
        self.code = code
        self.errors = list(errors)
        self.body = body
        super().__init__(f"{status} {code}: {message}" if code else f"{status}: {message}")


class WaterflowConnectionError(WaterflowSDKError):
    """The server could not be reached (refused, DNS, timeout)."""

    def __init__(self, server: str, detail: str) -> None:
        self.server = server
        self.detail = detail
        super().__init__(f"cannot reach the Waterflow server at {server} ({detail}); start it with `waterflow dev`")


class RunTimeoutError(WaterflowSDKError, TimeoutError):
    """:meth:`Client.wait` gave up before the run finished (the run goes on)."""

    def __init__(self, run_id: str, timeout: float, status: str) -> None:
        self.run_id = run_id
        self.timeout = timeout
        self.status = status
        super().__init__(f"run {run_id} still {status} after {timeout:g}s")
