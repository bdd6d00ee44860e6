"""The request guard: Host, Origin, bearer token and body content type, checked before any handler.

Browsers let any web page send requests to ``127.0.0.1``: a form post or a ``text/plain``
``fetch`` needs no CORS preflight, and a DNS-rebinding page reaches the port under its own host
name. The guard refuses all of those even when authentication is off:

* ``Host`` must name this server: a loopback name, an IP literal, the bind address, or an allowed
  host. A rebinding page always sends its own name.
* ``Origin``, when a browser sends one, must be this server itself or an allowed origin.
* Bodies must be JSON or YAML (415 otherwise): the types a page can send without a preflight
  (``text/plain``, forms, multipart) are never read. No CORS headers are ever sent.

With tokens configured, every route except :data:`PUBLIC_PATHS` needs ``Authorization: Bearer``;
``read`` tokens may only ``GET``. Inbound webhooks (:data:`HOOK_PATH`) are authenticated by
their HMAC signature instead.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from blacksheep import Request, Response

from .auth import TOKEN_ENV, ApiToken, Scope, find_token
from .problems import PRIVATE_HEADERS, APIError, json_response

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - recognized, not bound
BODY_TYPES = frozenset({"application/json", "application/yaml", "application/x-yaml", "text/yaml"})
"""Media types a request body may have. None of them is CORS-safelisted, so a cross-site page
cannot send them without a preflight, which this server never grants."""
PUBLIC_PATHS = ("/healthz", "/openapi.json", "/docs", "/ui")
"""Served without a token: health for load balancers; the API description, the web console's
static files and their UIs (which then ask for the token themselves)."""
HOOK_PATH = re.compile(r"^/v1/hooks/[A-Za-z0-9._-]{1,100}\Z")
"""Inbound webhooks (``POST /v1/hooks/{name}``) carry no bearer token: their HMAC signature,
made with the hook's own secret, is the credential (checked by the handler; ADR 0037)."""
READ_METHODS = frozenset({"GET", "HEAD"})
API_PREFIX = "/v1/"
"""Answers under this prefix carry run data, agent facts and logs: never stored, never sniffed."""
REALM = 'Bearer realm="waterflow"'


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def exposure_problem(host: str, authenticated: bool, insecure: bool) -> str | None:
    """Why serving on ``host`` with this configuration is refused, or ``None`` when it is fine."""
    if authenticated or insecure or is_loopback(host):
        return None
    return (
        f"refusing to serve the API on {host} without authentication: anyone who can reach it "
        f"could run commands on your agents. Set {TOKEN_ENV} (or --token-file), or pass --insecure "
        "if something else (a firewall, an authenticating proxy) protects it"
    )


def insecure_warning(host: str) -> str:
    """The loud line printed when ``--insecure`` lets an unauthenticated API listen on the network."""
    return (
        f"WARNING: authentication is OFF and the API listens on {host}: anyone who can reach this "
        "port can run commands on every agent. Use this only behind a firewall or an authenticating proxy."
    )


def auth_summary(tokens: tuple[ApiToken, ...]) -> str:
    """One line for the start-up banner: whether and how the API is authenticated (no secrets)."""
    if not tokens:
        return "authentication off (no API token configured)"
    scopes = ", ".join(f"{sum(t.scope is scope for t in tokens)} {scope.value}" for scope in Scope)
    return f"bearer tokens required ({scopes})"


@dataclass(frozen=True)
class AccessPolicy:
    """Who may talk to the API: the tokens, and the host names and origins it answers to."""

    tokens: tuple[ApiToken, ...] = ()
    bind_host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()

    def host_allowed(self, name: str) -> bool:
        """Whether a ``Host`` header naming ``name`` (port removed) is this server."""
        if "*" in self.allowed_hosts or name in LOOPBACK_NAMES:
            return True
        if name == self.bind_host.strip("[]").lower() and name not in WILDCARD_BINDS:
            return True
        try:
            ipaddress.ip_address(name)
            return True  # a rebinding page sends its DNS name, never an IP literal
        except ValueError:
            pass
        return name in {host.lower().rstrip(".") for host in self.allowed_hosts}

    def origin_allowed(self, origin: str, host_header: str) -> bool:
        """Whether a browser on ``origin`` may call this server (reached as ``host_header``)."""
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # includes "null": sandboxed frames, file:// pages
        if parts.netloc.lower() == host_header.lower():
            return True  # same origin: the server's own /docs page
        normalized = f"{parts.scheme}://{parts.netloc}".lower()
        return normalized in {allowed.lower().rstrip("/") for allowed in self.allowed_origins}


def _refusal(status: int, code: str, message: str, challenge: str | None = None) -> Response:
    headers = [*PRIVATE_HEADERS, *([(b"WWW-Authenticate", challenge.encode())] if challenge else [])]
    return json_response(status, APIError(status, code, message).body(), headers)


def _host_name(header: str) -> str:
    """The host part of a ``Host`` header, lower-case, without port, brackets or trailing dot."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    name, _, port = value.rpartition(":")
    if name and port.isdigit():
        value = name
    return value.rstrip(".")


def _media_type(request: Request) -> str:
    raw = request.get_first_header(b"content-type") or b""
    return raw.decode("latin-1").split(";", 1)[0].strip().lower()


def _has_body(request: Request) -> bool:
    """Whether the request carries a body or declares a type for one (HTTP/1.1 framing)."""
    if request.get_first_header(b"transfer-encoding") is not None:
        return True
    if request.get_first_header(b"content-type") is not None:
        return True
    length = (request.get_first_header(b"content-length") or b"0").strip()
    return length not in (b"", b"0")


def _api_headers(response: Response) -> None:
    # A shared proxy or the browser's disk cache must not keep an authenticated answer (a run's
    # outputs, an agent's facts) for the next user of the machine; a streaming answer's own
    # ``no-cache`` is kept. ``nosniff``: a step output shown as JSON is never run as a script.
    for name, value in PRIVATE_HEADERS:
        if not response.has_header(name):
            response.add_header(name, value)


def _is_public(path: str) -> bool:
    if path == "/":
        return True  # the redirect to /ui/
    return any(path == public or path.startswith(public + "/") for public in PUBLIC_PATHS)


class RequestGuard:
    """A BlackSheep middleware enforcing an :class:`AccessPolicy` on every request."""

    def __init__(self, policy: AccessPolicy) -> None:
        self.policy = policy

    async def __call__(self, request: Request, handler: Handler) -> Response:
        refusal = self.check(request)
        if refusal is not None:
            log.info("refused %s %s with %s", request.method, request.path, refusal.status)
            response = refusal
        else:
            response = await handler(request)
        if request.path.startswith(API_PREFIX):
            _api_headers(response)
        return response

    def check(self, request: Request) -> Response | None:
        """The refusal for ``request``, or ``None`` when it may go on."""
        raw_host = (request.get_first_header(b"host") or b"").decode("latin-1")
        name = _host_name(raw_host)
        if not name or not self.policy.host_allowed(name):
            return _refusal(
                400,
                "host_not_allowed",
                f"this server does not answer to the host name {name or '(none)'!r}; "
                "add it with --allowed-host (WATERFLOW_ALLOWED_HOSTS) if it is really this server",
            )
        origin = request.get_first_header(b"origin")
        if origin is not None and not self.policy.origin_allowed(origin.decode("latin-1"), raw_host):
            return _refusal(
                403,
                "origin_not_allowed",
                f"requests from the web origin {origin.decode('latin-1')!r} are not allowed; "
                "add it with --allowed-origin (WATERFLOW_ALLOWED_ORIGINS) to allow it",
            )
        if self.policy.tokens and not _is_public(request.path) and not HOOK_PATH.match(request.path):
            refusal = self._authorize(request)
            if refusal is not None:
                return refusal
        if _has_body(request):
            media = _media_type(request)
            if media not in BODY_TYPES and not (media.startswith("application/") and media.endswith("+json")):
                return _refusal(
                    415,
                    "unsupported_media_type",
                    f"Content-Type {media or '(none)'!r} is not accepted; send the workflow as "
                    "application/yaml or a JSON envelope as application/json",
                )
        return None

    def _authorize(self, request: Request) -> Response | None:
        header = (request.get_first_header(b"authorization") or b"").decode("latin-1").strip()
        scheme, _, presented = header.partition(" ")
        if not header:
            return _refusal(
                401,
                "unauthorized",
                "this API needs a bearer token: send 'Authorization: Bearer <token>' "
                f"(the waterflow CLI and SDK read {TOKEN_ENV})",
                REALM,
            )
        token = find_token(self.policy.tokens, presented.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            return _refusal(401, "unauthorized", "the bearer token is not valid", f'{REALM}, error="invalid_token"')
        if token.scope is Scope.READ and request.method not in READ_METHODS:
            return _refusal(
                403,
                "forbidden",
                f"token {token.name!r} is read-only; {request.method} {request.path} needs an operator token",
                f'{REALM}, error="insufficient_scope"',
            )
        return None
