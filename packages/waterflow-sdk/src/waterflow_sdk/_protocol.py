"""The HTTP protocol shared by :class:`Client` and :class:`AsyncClient`: requests and replies.

Both clients build the same :class:`Call` objects, retry them by the same :class:`Retry` rules,
read replies with the same functions and resume followed logs with the same :class:`LogResume`;
they differ only in whether the I/O is awaited.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from .errors import RunTimeoutError, WaterflowAPIError, WaterflowConnectionError
from .models import Agent, ErrorItem, LogEntry, Node, Run, RunRef, Validation

DEFAULT_SERVER = "http://127.0.0.1:8080"
SERVER_ENV = "WATERFLOW_SERVER"
TOKEN_ENV = "WATERFLOW_API_TOKEN"  # noqa: S105 - the name of a variable, not a secret

M = TypeVar("M", bound=BaseModel)

STREAM_TIMEOUT = httpx.Timeout(30.0, read=None)
"""A followed log stream may be quiet for as long as a step runs (the server sends keep-alives)."""


def server_url(server: str | None) -> str:
    """The server's base URL: the argument, else ``$WATERFLOW_SERVER``, else the local default."""
    url = (server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    return url


def request_headers(headers: Mapping[str, str] | None, token: str | None) -> dict[str, str]:
    """``headers`` plus ``Authorization: Bearer`` from ``token``, else ``$WATERFLOW_API_TOKEN``.

    An ``Authorization`` header given explicitly wins.
    """
    merged = dict(headers or {})
    secret = (token if token is not None else os.environ.get(TOKEN_ENV, "")).strip()
    if secret and not any(key.lower() == "authorization" for key in merged):
        merged["Authorization"] = f"Bearer {secret}"
    return merged


def workflow_text(workflow: str | os.PathLike[str]) -> str:
    """The YAML of ``workflow``: a path (``PathLike``, or a one-line ``str`` naming a file) or text."""
    if isinstance(workflow, os.PathLike):
        return Path(workflow).read_text(encoding="utf-8")
    if "\n" not in workflow and workflow.strip() and Path(workflow).is_file():
        return Path(workflow).read_text(encoding="utf-8")
    return workflow


def run_path(run_id: str, suffix: str = "") -> str:
    """``/v1/workflows/<id>[suffix]`` with the id escaped."""
    return f"/v1/workflows/{quote(run_id, safe='')}{suffix}"


@dataclass
class Call:
    """One HTTP request of the API."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    idempotent: bool = False
    """Sending it twice does what sending it once does (every GET is)."""

    @property
    def repeatable(self) -> bool:
        """Whether it may be sent again after its answer was lost."""
        return self.idempotent or self.method == "GET"


# The request never reached the server: sending it again cannot do anything twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Retry:
    """How often a request is sent again after a connection error, and how long to wait between.

    A request that never reached the server (connection refused, DNS, connect timeout) is always
    retried. One whose answer was lost (the connection broke, a read timed out) only when sending
    it twice is harmless: every ``GET``, ``validate``, and ``submit`` with an ``id`` (the id is the
    idempotency key, ADR 0009). ``cancel``, ``signal`` and ``submit`` without an ``id`` are not
    resent then: the error is raised and the caller decides. Error answers (4xx, 5xx) are never
    retried. Waits double from ``backoff`` up to ``max_backoff`` seconds.
    """

    attempts: int = 4
    """Tries in all, the first included (1: no retries)."""
    backoff: float = 0.25
    max_backoff: float = 5.0

    def delay(self, call: Call, error: httpx.HTTPError, attempt: int) -> float | None:
        """Seconds to wait before try ``attempt + 1`` of ``call`` after ``error``; ``None``: give up."""
        if attempt >= self.attempts or not isinstance(error, httpx.TransportError):
            return None
        if isinstance(error, httpx.UnsupportedProtocol):  # a wrong URL stays wrong
            return None
        if not (call.repeatable or isinstance(error, _NOT_SENT)):
            return None
        return float(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


NO_RETRY = Retry(attempts=1)
"""Send every request once."""
DEFAULT_RETRY = Retry()


def submit_call(
    text: str,
    inputs: Mapping[str, Any] | None,
    run_id: str | None,
    limit: str | Sequence[str] | None = None,
    check: bool = False,
) -> Call:
    """``POST /v1/workflows`` with the JSON envelope (idempotent when it names the run ``id``)."""
    body: dict[str, Any] = {"workflow": text}
    if inputs:
        body["inputs"] = dict(inputs)
    if run_id:
        body["id"] = run_id
    if limit is not None:
        body["limit"] = limit if isinstance(limit, str) else list(limit)
    if check:
        body["check"] = True
    return Call("POST", "/v1/workflows", json=body, idempotent=bool(run_id))


def submitted(response: httpx.Response, call: Call, retried: bool) -> RunRef:
    """The answer of :func:`submit_call`.

    After a retry, a 409 naming the submitted id is the run the lost first try started: it is
    returned (``created=True``) instead of raised.
    """
    run_id = (call.json or {}).get("id")
    if retried and run_id and response.status_code == 409:
        body = _json_or_none(response)
        if isinstance(body, dict) and body.get("id") == run_id:
            return RunRef(id=run_id, run_id=str(body.get("run_id") or ""), status_url=str(body.get("status_url") or ""))
    return parse(response, RunRef)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def validate_call(text: str, inputs: Mapping[str, Any] | None = None) -> Call:
    """``POST /v1/validate`` (it changes nothing: idempotent)."""
    body: dict[str, Any] = {"workflow": text}
    if inputs is not None:
        body["inputs"] = dict(inputs)
    return Call("POST", "/v1/validate", json=body, idempotent=True)


Moment = datetime | date | str
"""A time filter: an aware ``datetime``, a ``date`` (midnight UTC) or RFC 3339 text."""


def _moment(value: Moment) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("since/until: give a timezone-aware datetime (naive ones are ambiguous)")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def list_call(
    status: str | Iterable[str] | None,
    name: str | None,
    page_size: int,
    page_token: str | None,
    since: Moment | None = None,
    until: Moment | None = None,
    search: str | None = None,
) -> Call:
    """``GET /v1/workflows`` with its filters."""
    params: dict[str, Any] = {"page_size": page_size}
    if status:
        params["status"] = status if isinstance(status, str) else ",".join(status)
    if name:
        params["name"] = name
    if search:
        params["q"] = search
    if since is not None:
        params["since"] = _moment(since)
    if until is not None:
        params["until"] = _moment(until)
    if page_token:
        params["page_token"] = page_token
    return Call("GET", "/v1/workflows", params=params)


def get_call(run_id: str) -> Call:
    """``GET /v1/workflows/{id}``."""
    return Call("GET", run_path(run_id))


def snapshot_call(run_id: str) -> Call:
    """``GET /v1/workflows/{id}/snapshot``."""
    return Call("GET", run_path(run_id, "/snapshot"))


def rerun_call(run_id: str, failed_only: bool, from_step: str | None, new_id: str | None) -> Call:
    """``POST /v1/workflows/{id}/rerun`` (idempotent when it names the rerun's ``id``)."""
    body: dict[str, Any] = {"failed_only": failed_only}
    if from_step:
        body["from_step"] = from_step
    if new_id:
        body["id"] = new_id
    return Call("POST", run_path(run_id, "/rerun"), json=body, idempotent=bool(new_id))


def cancel_call(run_id: str) -> Call:
    """``DELETE /v1/workflows/{id}``."""
    return Call("DELETE", run_path(run_id))


class SignalAccepted(BaseModel):
    """The answer of ``POST /v1/workflows/{id}/signals/{name}``: the run's gates got the signal."""

    id: str
    run_id: str = ""
    signal: str
    decision: str = "approve"
    by: str = ""
    """The API token name the server took the signal from (empty when it has no tokens)."""
    steps: list[str] = []
    """The gates (``job/step[#instance]``) that waited for it."""
    status_url: str = ""


def signal_call(run_id: str, name: str, data: Mapping[str, Any] | None, decision: str) -> Call:
    """``POST /v1/workflows/{id}/signals/{name}``: answer the run's approval gates waiting for ``name``."""
    body: dict[str, Any] = {"decision": decision, "data": dict(data or {})}
    return Call("POST", run_path(run_id, f"/signals/{quote(name, safe='')}"), json=body)


def logs_call(run_id: str, follow: bool = False) -> Call:
    """``GET /v1/workflows/{id}/logs``; with ``follow`` an event stream (send with :data:`STREAM_TIMEOUT`)."""
    return Call("GET", run_path(run_id, "/logs"), params={"follow": "true"} if follow else {})


def nodes_call() -> Call:
    """``GET /v1/nodes``."""
    return Call("GET", "/v1/nodes")


def agents_call(include_stale: bool) -> Call:
    """``GET /v1/agents`` (``all=true`` includes agents that stopped heartbeating)."""
    return Call("GET", "/v1/agents", params={"all": "true"} if include_stale else {})


def health_call() -> Call:
    """``GET /healthz``."""
    return Call("GET", "/healthz")


def metrics_call() -> Call:
    """``GET /metrics`` (Prometheus text)."""
    return Call("GET", "/metrics")


def metrics_text(response: httpx.Response) -> str:
    """The answer of :func:`metrics_call`."""
    return check(response).text


def connection_error(server: str, exc: httpx.HTTPError) -> WaterflowConnectionError:
    """A friendly error for a transport failure."""
    if isinstance(exc, httpx.ConnectError):
        detail = "connection refused" if "refused" in str(exc).lower() else str(exc) or "cannot connect"
    elif isinstance(exc, httpx.TimeoutException):
        detail = "timed out"
    else:
        detail = str(exc) or type(exc).__name__
    return WaterflowConnectionError(server, detail)


def api_error(response: httpx.Response) -> WaterflowAPIError:
    """The exception for an error response (JSON ``{code, message, errors}`` or anything else)."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return WaterflowAPIError(response.status_code, text[:500] or response.reason_phrase, body=text)
    if not isinstance(body, dict):
        return WaterflowAPIError(response.status_code, str(body)[:500], body=body)
    errors: list[ErrorItem] = []
    for item in body.get("errors") or []:
        try:
            errors.append(ErrorItem.model_validate(item))
        except ValidationError:
            continue
    message = str(body.get("message") or response.reason_phrase)
    return WaterflowAPIError(response.status_code, message, code=str(body.get("code") or ""), errors=errors, body=body)


def check(response: httpx.Response) -> httpx.Response:
    """``response`` if it is a success, else raise :class:`WaterflowAPIError`."""
    if response.status_code >= 400:
        raise api_error(response)
    return response


def parse(response: httpx.Response, model: type[M]) -> M:
    """The body of a successful response as ``model``."""
    check(response)
    try:
        return model.model_validate(response.json())
    except (ValueError, ValidationError) as exc:
        raise WaterflowAPIError(
            response.status_code, f"unexpected answer from the server: {exc}", body=response.text
        ) from None


def validation(response: httpx.Response) -> Validation:
    """The answer of :func:`validate_call`: the server's verdict, its problems for a 422; raise for
    anything else."""
    if response.status_code == 422:
        error = api_error(response)
        errors = error.errors or [ErrorItem(line=0, column=0, path="", message=error.message)]
        return Validation(valid=False, errors=errors)
    return parse(response, Validation)


def parse_items(response: httpx.Response, key: str, model: type[M]) -> list[M]:
    """The list ``key`` of a successful response's JSON object, each item as ``model``."""
    return [model.model_validate(item) for item in check(response).json().get(key, [])]


def log_entries(response: httpx.Response) -> list[LogEntry]:
    """The entries of a (not followed) logs response."""
    return parse_items(response, "entries", LogEntry)


def nodes(response: httpx.Response) -> list[Node]:
    """The answer of :func:`nodes_call`."""
    return parse_items(response, "nodes", Node)


def agents(response: httpx.Response) -> list[Agent]:
    """The answer of :func:`agents_call`."""
    return parse_items(response, "agents", Agent)


def health(response: httpx.Response) -> dict[str, Any]:
    """The answer of :func:`health_call` (a 503 still has a body: it says what is down)."""
    if response.status_code not in (200, 503):
        raise api_error(response)
    return dict(response.json())


class Waiting:
    """When ``wait`` looks at a run again: every ``poll`` seconds until it ends or ``timeout`` passes."""

    def __init__(self, run_id: str, timeout: float | None, poll: float) -> None:
        self.run_id = run_id
        self.timeout = timeout
        self.poll = poll
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def delay(self, run: Run) -> float | None:
        """``None`` once ``run`` is done, else the seconds to sleep before the next look.

        Raises :class:`RunTimeoutError` when the timeout has passed.
        """
        if run.done:
            return None
        if self.deadline is None:
            return self.poll
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RunTimeoutError(self.run_id, self.timeout or 0.0, run.status)
        return min(self.poll, left)


def log_line(entry: LogEntry) -> str:
    """How a log entry reads as one line of text."""
    return str(entry)


class SSEDecoder:
    """Incremental server-sent-events parser: feed lines, get ``(event, data)`` when complete."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, str] | None:
        """One line of the stream (without its newline)."""
        if line == "":
            if not self._data:
                self._event = "message"
                return None
            event, data = self._event, "\n".join(self._data)
            self._event, self._data = "message", []
            return event, data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


class LogFollower:
    """Reads the event stream of a followed logs response: feed it lines, get log entries.

    ``ended`` turns true at the ``end`` event (the run finished); an ``error`` event raises
    :class:`WaterflowAPIError`.
    """

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self.ended = False

    def feed(self, line: str) -> LogEntry | None:
        """One line of the stream (without its newline); the entry it completes, if any."""
        item = self._decoder.feed(line)
        if item is None:
            return None
        event, data = item[0], decode_data(item[1])
        if event in ("log", "step") and isinstance(data, dict):
            return LogEntry.model_validate(data)
        if event == "error" and isinstance(data, dict):
            raise WaterflowAPIError(503, str(data.get("message", data)), code=str(data.get("code", "")))
        if event == "end":
            self.ended = True
        return None


def decode_data(data: str) -> Any:
    """An event's data: JSON when it parses, else the text."""
    try:
        return json.loads(data)
    except ValueError:
        return data


class LogResume:
    """Follows a run's logs across reconnects without repeating what was already yielded.

    The server starts each follow stream again from the run's first entry (after a dropped
    connection, or when a stream expires after an hour). Step events already yielded are
    recognised by step and status; a step's replayed lines are lined up with the ones yielded
    (from where the first replayed line was seen) and skipped while they match, so a step that
    kept printing goes on where it was. A step whose lines repeat themselves may, after a
    reconnect, show a few lines again.
    """

    KEEP = 5000
    """Lines remembered per step to line a replay up with (more than the server replays)."""

    def __init__(self) -> None:
        self._events: set[tuple[str, str | None]] = set()
        self._lines: dict[str, list[str]] = {}
        self._replaying = False
        self._replay: dict[str, int] = {}
        """Per step during a replay: the next remembered line expected, or -1 once past them."""

    def reconnected(self) -> None:
        """A new stream starts: what comes first was seen before."""
        self._replaying = True
        self._replay = {}

    def admit(self, entry: LogEntry) -> bool:
        """Whether ``entry`` is new (and remember it)."""
        if entry.kind == "step":
            key = (entry.step, entry.status)
            if key in self._events:
                return False
            self._events.add(key)
            return True
        lines = self._lines.setdefault(entry.step, [])
        if self._replaying:
            at = self._replay.get(entry.step)
            if at is None and entry.line in lines:
                at = lines.index(entry.line)  # the replay's window may start after the step's first line
            if at is not None and 0 <= at < len(lines) and lines[at] == entry.line:
                self._replay[entry.step] = at + 1
                return False
            self._replay[entry.step] = -1
        lines.append(entry.line)
        if len(lines) > 2 * self.KEEP:
            del lines[: -self.KEEP]
            self._replay[entry.step] = -1
        return True


class Following:
    """One ``follow_logs`` iteration over as many streams as it takes until the run ends.

    The client opens :attr:`call` as a stream, hands each line to :meth:`feed` until
    :attr:`ended`, and when a stream breaks asks :meth:`broken` (or :meth:`closed`, for a stream
    that ended without the run) how long to wait before opening the next one. A stream that
    expired (the server's one-hour bound) is reopened at once; a broken connection as
    :class:`Retry` allows for a ``GET``, counted afresh after each new entry. Without ``resume``
    there is one stream: it raises what broke it and ends when the server ends it.
    """

    def __init__(self, run_id: str, retry: Retry, server: str, *, resume: bool = True) -> None:
        self.call = logs_call(run_id, follow=True)
        self._resume_streams = resume
        self._retry = retry
        self._server = server
        self._resume = LogResume()
        self._follower: LogFollower | None = None
        self._attempt = 0

    def opened(self, response: httpx.Response) -> None:
        """A stream answered (raise :class:`WaterflowAPIError` for an error, after reading it)."""
        if response.status_code >= 400:
            raise api_error(response)
        if self._follower is not None:
            self._resume.reconnected()
        self._follower = LogFollower()

    @property
    def ended(self) -> bool:
        """The run ended: the iteration is over."""
        return self._follower is not None and self._follower.ended

    def feed(self, line: str) -> LogEntry | None:
        """One line of the current stream; the entry it completes, unless it was yielded before."""
        assert self._follower is not None
        entry = self._follower.feed(line)
        if entry is None or not self._resume.admit(entry):
            return None
        self._attempt = 0
        return entry

    def broken(self, error: Exception) -> float:
        """Seconds to wait before the next stream after ``error``; raise it when that is all."""
        if isinstance(error, WaterflowAPIError):
            if error.code != "stream_expired" or not self._resume_streams:
                raise error
            return 0.0
        if not isinstance(error, httpx.HTTPError):
            raise error
        self._attempt += 1
        delay = self._retry.delay(self.call, error, self._attempt) if self._resume_streams else None
        if delay is None:
            raise connection_error(self._server, error) from None
        return delay

    def closed(self) -> float | None:
        """The stream ended before the run did (the server went away): like a broken connection
        (``None`` without ``resume``: the iteration ends)."""
        if not self._resume_streams:
            return None
        return self.broken(httpx.RemoteProtocolError("the server closed the log stream before the run ended"))
