"""``--watch``: follow a run live in the terminal until it ends.

The run's follow stream (``GET /v1/workflows/{id}/logs?follow=true``) is read on a thread of its
own and handed over through a queue; the main thread feeds each entry to the
:class:`~.live_model.LiveModel`, reads the run again (``GET /v1/workflows/{id}``) only when a step
event says a state changed, and redraws. There is no polling loop: between entries the view only
redraws itself (elapsed times move). On a terminal the view is drawn with rich; when stdout is
not a terminal, or ``NO_COLOR`` is set, or ``TERM=dumb``, it is plain append-only lines, one per
state change and per log line (ADR 0034), and the per-server result matrix of each fan-out job
printed once when the run has ended (the rich view shows it in every frame).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any, Protocol

from .cli import EXIT_INTERRUPTED
from .client import Client
from .errors import WaterflowAPIError, WaterflowSDKError
from .live_model import LiveModel, plain_lines, printable
from .matrix_table import matrix_lines
from .models import LogEntry, Run

REDRAW_SECONDS = 0.5
"""How often the terminal view redraws while nothing arrives (local only: no request is made)."""

RECONNECT_PAUSE = 1.0
"""Seconds before following again after the server closed the stream with the run still going."""

_END = object()


class View(Protocol):
    """Where the model is shown: :class:`PlainView` or :class:`TerminalView`."""

    def show(self, model: LiveModel, now: datetime) -> None:
        """Show what changed."""

    def note(self, text: str) -> None:
        """Say something about the watching itself (not the run)."""

    def finish(self, model: LiveModel) -> None:
        """The run has ended: show what only the final state says."""


class PlainView:
    """Append-only lines: one per state change and per log line (CI logs, pipes, dumb terminals)."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo

    def show(self, model: LiveModel, now: datetime) -> None:
        """Print the changes since the last call."""
        for line in plain_lines(model.changes(), now):
            self._echo(line)

    def note(self, text: str) -> None:
        """Print ``(text)``."""
        self._echo(f"({text})")

    def finish(self, model: LiveModel) -> None:
        """Print the per-server result matrices once, from the final state (a table per change
        would flood a CI log)."""
        for line in matrix_lines(model.matrix):
            self._echo(printable(line))


class TerminalView:
    """The rich live view, redrawn in place; its last frame stays on the screen."""

    def __init__(self, live: Any) -> None:
        self._live = live

    def show(self, model: LiveModel, now: datetime) -> None:
        """Redraw the whole view."""
        from .live_view import render

        model.changes()  # the drawing shows the state; the changes are for the plain view
        self._live.update(render(model, now), refresh=True)

    def note(self, text: str) -> None:
        """Print ``text`` above the view."""
        self._live.console.print(text, markup=False, highlight=False, style="dim")

    def finish(self, model: LiveModel) -> None:
        """Nothing: the last frame, which stays on the screen, already shows the matrices."""


def plain_wanted(stream: IO[str]) -> bool:
    """Whether ``--watch`` writes plain lines: not a terminal, ``NO_COLOR`` set, or ``TERM=dumb``."""
    return not stream.isatty() or bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM", "").lower() == "dumb"


@contextmanager
def open_view(echo: Callable[[str], None]) -> Iterator[View]:
    """The view for this stdout: rich on a capable terminal, plain lines otherwise."""
    if plain_wanted(sys.stdout):
        yield PlainView(echo)
        return
    from rich.console import Console
    from rich.live import Live

    with Live(console=Console(), auto_refresh=False, transient=False, redirect_stderr=False) as live:
        yield TerminalView(live)


def _now() -> datetime:
    return datetime.now(UTC)


class _Stream(threading.Thread):
    """Reads the follow stream into ``out``: entries, then ``_END``, or the exception that ended it."""

    def __init__(self, server: str, run_id: str, out: queue.Queue[object]) -> None:
        super().__init__(name=f"follow {run_id}", daemon=True)
        self._server = server
        self._run_id = run_id
        self._out = out

    def run(self) -> None:
        try:
            with Client(self._server) as client:
                for entry in client.log_entries(self._run_id, follow=True):
                    self._out.put(entry)
            self._out.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            self._out.put(exc)


def watch(client: Client, run_id: str, *, timeout: float | None, echo: Callable[[str], None]) -> Run:
    """``--watch``: show ``run_id`` on the view this stdout calls for until the run ends.

    Ctrl-C stops watching, not the run: it says how to cancel the run and exits 130.
    """
    try:
        with open_view(echo) as view:
            return follow(client, run_id, view, timeout=timeout)
    except KeyboardInterrupt:
        print(f"stopped watching; run {run_id} goes on (`waterflow cancel {run_id}` stops it)", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


def follow(
    client: Client, run_id: str, view: View, *, timeout: float | None, reconnect_pause: float = RECONNECT_PAUSE
) -> Run:
    """Show ``run_id`` on ``view`` until it ends; return the finished run.

    The stream is read with a second client for ``client.server`` (its token from
    ``$WATERFLOW_API_TOKEN``, as the CLI's). Raises :class:`WaterflowSDKError` when ``timeout``
    seconds pass first (the run goes on).
    """
    model = LiveModel(run_id)
    run = client.get(run_id)
    model.update(run, _now())
    view.show(model, _now())
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:  # at least once: on a finished run the stream replays its steps and ends
        entries = queue.Queue[object]()
        _Stream(client.server, run_id, entries).start()
        ended = _drain(client, run_id, model, view, entries, deadline, timeout)
        run = client.get(run_id)
        model.update(run, _now())
        model.settle()
        view.show(model, _now())
        if run.done:
            view.finish(model)
            return run
        view.note(printable(f"the server {ended}; following run {run_id} again (recent lines may repeat)"))
        time.sleep(reconnect_pause)


def _drain(
    client: Client,
    run_id: str,
    model: LiveModel,
    view: View,
    entries: queue.Queue[object],
    deadline: float | None,
    timeout: float | None,
) -> str:
    """Feed one stream's entries to ``model`` until it ends; say how it ended."""
    while True:
        wait = REDRAW_SECONDS
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                status = model.run.status if model.run else "running"
                raise WaterflowSDKError(f"run {run_id} still {status} after {timeout:g}s (it goes on)")
            wait = min(wait, left)
        try:
            batch = [entries.get(timeout=wait)]
        except queue.Empty:
            view.show(model, _now())
            continue
        while not entries.empty():  # take what piled up, so one read serves them all
            batch.append(entries.get_nowait())
        stale = False
        for item in batch:
            if item is _END:
                return "ended the stream"
            if isinstance(item, WaterflowAPIError) and item.code == "stream_expired":
                return f"closed the stream ({item.message})"
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, LogEntry):
                stale = model.feed(item, _now()) or stale
        if stale:
            model.update(client.get(run_id), _now())
        view.show(model, _now())
