"""Run blocking file work in a thread without letting cancellation race it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def blocking(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a worker thread, so heartbeats keep flowing while the disk is busy.

    When the step is cancelled meanwhile, wait for the thread to finish before re-raising: the
    caller's cleanup (closing and unlinking the temporary file) must never run while the thread
    still uses the file descriptor.
    """
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await future
        raise
