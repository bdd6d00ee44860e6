"""Bounds on follow streams (``GET /v1/workflows/{id}/logs?follow=true``).

Each open stream polls Temporal every ``follow_poll_seconds`` for as long as it lasts, so streams
are limited: ``per_client`` open at once from one client address, ``total`` on the server, and
each ends after ``max_seconds`` with an ``error`` event (code ``stream_expired``) telling the
client to reconnect. A stream over a limit is refused with 429 before it starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .problems import APIError

DEFAULT_PER_CLIENT = 8
DEFAULT_TOTAL = 256
DEFAULT_MAX_SECONDS = 3600.0


def stream_expired(max_seconds: float) -> APIError:
    """The ``error`` event that ends a stream at its maximum duration."""
    return APIError(
        408,
        "stream_expired",
        f"follow streams last at most {max_seconds:g} s; reconnect to go on following the run",
    )


@dataclass
class StreamLease:
    """One open stream; :meth:`release` (idempotent) gives its place back."""

    limits: StreamLimits
    client: str
    deadline: float
    released: bool = False

    def expired(self) -> bool:
        """Whether the stream has lasted its maximum duration."""
        return time.monotonic() >= self.deadline

    def release(self) -> None:
        """Close the stream's place in the counts."""
        if not self.released:
            self.released = True
            self.limits._release(self.client)


@dataclass
class StreamLimits:
    """How many follow streams may be open, per client address and in all, and for how long."""

    per_client: int = DEFAULT_PER_CLIENT
    total: int = DEFAULT_TOTAL
    max_seconds: float = DEFAULT_MAX_SECONDS
    _open: dict[str, int] = field(default_factory=dict)

    @property
    def open_streams(self) -> int:
        """Streams open now."""
        return sum(self._open.values())

    def acquire(self, client: str) -> StreamLease:
        """A lease for a new stream from ``client``, or 429 ``too_many_streams``."""
        if self._open.get(client, 0) >= self.per_client:
            raise APIError(
                429,
                "too_many_streams",
                f"this client already follows {self.per_client} streams, the most allowed; close one first",
            )
        if self.open_streams >= self.total:
            raise APIError(
                429, "too_many_streams", f"the server already serves {self.total} streams; retry later"
            )
        self._open[client] = self._open.get(client, 0) + 1
        return StreamLease(self, client, time.monotonic() + self.max_seconds)

    def _release(self, client: str) -> None:
        left = self._open.get(client, 0) - 1
        if left > 0:
            self._open[client] = left
        else:
            self._open.pop(client, None)


__all__ = ["StreamLease", "StreamLimits", "stream_expired"]
