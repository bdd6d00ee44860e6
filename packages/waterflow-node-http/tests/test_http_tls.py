"""http/request over HTTPS, run by a real agent, against real HTTPS servers on 127.0.0.1.

The servers' certificates come from a CA made in the test (``tls_certs``): nothing on this machine
trusts it, so the default verification must refuse it and ``ca-bundle`` must make it trusted.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from waterflow_testing import AgentProcess, StartAgent, unique_name
from waterflow_testing.certs import CertPair, TestCerts
from waterflow_testing.harness import StepHarness, make_step

if TYPE_CHECKING:  # the fixture's class; conftest is not importable under --import-mode=importlib
    from conftest import LocalServer


class TLSHandler(BaseHTTPRequestHandler):
    """``/echo`` answers with the request's headers as JSON; ``/redirect?to=URL`` redirects there."""

    protocol_version = "HTTP/1.1"
    server: HTTPSServer

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest output stays readable."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen.append({"path": url.path, "headers": headers})
        if url.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(url.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"path": url.path, "headers": headers}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HTTPSServer(ThreadingHTTPServer):
    """A threading HTTP server whose listening socket speaks TLS with ``pair``."""

    daemon_threads = True

    def __init__(self, pair: CertPair) -> None:
        super().__init__(("127.0.0.1", 0), TLSHandler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pair.cert, pair.key)
        # A refused handshake raises in accept(), which serve_forever absorbs (SSLError is an OSError).
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.seen: list[dict[str, Any]] = []

    def url(self, host: str = "127.0.0.1") -> str:
        """Base URL for ``host`` (which must resolve to 127.0.0.1), no trailing slash."""
        return f"https://{host}:{self.server_address[1]}"


@pytest.fixture
def https_server() -> Iterator[Callable[[CertPair], HTTPSServer]]:
    """``https_server(pair)`` starts an HTTPS server with that certificate; all stopped afterwards."""
    servers: list[HTTPSServer] = []

    def start(pair: CertPair) -> HTTPSServer:
        server = HTTPSServer(pair)
        threading.Thread(target=server.serve_forever, name="test-https-server", daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def agent(start_agent: StartAgent, task_queue: str) -> AgentProcess:
    """An agent serving ``task_queue``, allowed to reach 127.0.0.1."""
    return start_agent(unique_name(), [task_queue], env={"WATERFLOW_HTTP_ALLOW": "", "WATERFLOW_HTTP_DENY": ""})


async def _fails(harness: StepHarness, queue: str, inputs: dict[str, Any]) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as info:
        await harness.run(make_step("http/request", inputs), queue, max_attempts=1)
    activity_error = info.value.cause
    assert isinstance(activity_error, ActivityError), info.value
    assert isinstance(activity_error.cause, ApplicationError), activity_error
    return activity_error.cause


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_ca_bundle_trusts_the_test_ca(
    step_harness: StepHarness,
    agent: AgentProcess,
    task_queue: str,
    tls_certs: TestCerts,
    https_server: Callable[[CertPair], HTTPSServer],
    host: str,
) -> None:
    # localhost: the agent connects to the address it resolved, yet checks the URL's host name.
    server = https_server(tls_certs.server)
    inputs = {"url": f"{server.url(host)}/echo", "ca-bundle": str(tls_certs.ca.cert)}
    result = await step_harness.run(make_step("http/request", inputs), task_queue)
    assert result.outputs["status"] == 200 and result.outputs["json"]["path"] == "/echo"
    assert result.outputs["url"] == f"{server.url(host)}/echo"


async def test_default_verification_refuses_an_unknown_ca(
    step_harness: StepHarness,
    agent: AgentProcess,
    task_queue: str,
    tls_certs: TestCerts,
    https_server: Callable[[CertPair], HTTPSServer],
) -> None:
    server = https_server(tls_certs.server)
    err = await _fails(step_harness, task_queue, {"url": f"{server.url()}/echo"})
    assert err.type == "WaterflowStepFailed"
    assert f"GET {server.url()}/echo failed: ConnectError" in err.message
    assert "CERTIFICATE_VERIFY_FAILED" in err.message and "unable to get local issuer certificate" in err.message
    assert server.seen == []  # refused before any request was sent


async def test_a_certificate_for_another_host_is_refused(
    step_harness: StepHarness,
    agent: AgentProcess,
    task_queue: str,
    tls_certs: TestCerts,
    https_server: Callable[[CertPair], HTTPSServer],
) -> None:
    server = https_server(tls_certs.other_host)  # signed by the trusted CA, but for other.invalid
    for host, mismatch in (("localhost", "Hostname mismatch"), ("127.0.0.1", "IP address mismatch")):
        inputs = {"url": f"{server.url(host)}/echo", "ca-bundle": str(tls_certs.ca.cert)}
        err = await _fails(step_harness, task_queue, inputs)
        assert err.type == "WaterflowStepFailed" and "CERTIFICATE_VERIFY_FAILED" in err.message
        assert mismatch in err.message, err.message
    assert server.seen == []


async def test_verify_false_accepts_an_untrusted_certificate(
    step_harness: StepHarness,
    agent: AgentProcess,
    task_queue: str,
    tls_certs: TestCerts,
    https_server: Callable[[CertPair], HTTPSServer],
) -> None:
    server = https_server(tls_certs.other_host)  # unknown CA for this client and the wrong name
    result = await step_harness.run(
        make_step("http/request", {"url": f"{server.url('localhost')}/echo", "verify": False}), task_queue
    )
    assert result.outputs["status"] == 200


async def test_ca_bundle_is_the_only_trust(
    step_harness: StepHarness,
    agent: AgentProcess,
    task_queue: str,
    tls_certs: TestCerts,
    https_server: Callable[[CertPair], HTTPSServer],
) -> None:
    # A bundle replaces the system's CAs rather than adding to them: another CA's bundle refuses.
    server = https_server(tls_certs.server)
    inputs = {"url": f"{server.url()}/echo", "ca-bundle": str(tls_certs.rogue_ca.cert)}
    err = await _fails(step_harness, task_queue, inputs)
    assert "CERTIFICATE_VERIFY_FAILED" in err.message


@pytest.mark.parametrize("via", ["auth", "headers"])
async def test_redirect_from_https_to_http_drops_authorization(
    step_harness: StepHarness,
    agent: AgentProcess,
    task_queue: str,
    tls_certs: TestCerts,
    https_server: Callable[[CertPair], HTTPSServer],
    server: LocalServer,
    via: str,
) -> None:
    secure = https_server(tls_certs.server)
    target = f"{server.url}/echo"
    inputs: dict[str, Any] = {
        "url": f"{secure.url()}/redirect?to={target}",
        "ca-bundle": str(tls_certs.ca.cert),
        "headers": {"X-Api-Key": "forwarded"},
    }
    if via == "auth":
        inputs["auth"] = {"type": "bearer", "token": "tls-only-t0ken"}
    else:
        inputs["headers"]["Authorization"] = "Bearer tls-only-t0ken"
    result = await step_harness.run(make_step("http/request", inputs), task_queue)
    assert result.outputs["status"] == 200 and result.outputs["url"] == target
    assert secure.seen[0]["headers"]["authorization"] == "Bearer tls-only-t0ken"
    # The plain-text hop (another origin) got no Authorization; other headers are sent on, as the
    # node's page documents (follow-redirects: false is the way to keep them at home).
    plain_headers = server.seen.requests[0]["headers"]
    assert isinstance(plain_headers, dict)
    assert "authorization" not in plain_headers and plain_headers["x-api-key"] == "forwarded"
