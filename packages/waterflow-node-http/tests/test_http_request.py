"""http/request against a real HTTP server on 127.0.0.1, calling the node directly."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from waterflow_core.node import NodeContext
from waterflow_core.plugins import PluginManager
from waterflow_core.registry import NodeRegistry
from waterflow_node_http import RequestInputs, RequestNode, RequestOutputs
from waterflow_node_http.models import MAX_BODY_LIMIT
from waterflow_testing import LogRecorder, recording_context

if TYPE_CHECKING:  # the fixture's class; conftest is not importable under --import-mode=importlib
    from conftest import LocalServer


def connections(collect: LogRecorder) -> list[str]:
    """The node's "connecting to" lines: every connection it opened."""
    return [m for m in collect.messages() if m.startswith("connecting to")]


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[NodeContext, LogRecorder]:
    return recording_context(tmp_path)


@pytest.fixture
def collect(recorded: tuple[NodeContext, LogRecorder]) -> LogRecorder:
    return recorded[1]


@pytest.fixture
def ctx(recorded: tuple[NodeContext, LogRecorder]) -> NodeContext:
    return recorded[0]


@pytest.fixture(autouse=True)
def default_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from the built-in policy, whatever the developer's environment says."""
    monkeypatch.delenv("WATERFLOW_HTTP_ALLOW", raising=False)
    monkeypatch.delenv("WATERFLOW_HTTP_DENY", raising=False)


async def request(ctx: NodeContext, url: str, **with_: Any) -> RequestOutputs:
    return await RequestNode().run(ctx, RequestInputs.model_validate({"url": url, **with_}))


async def failure(ctx: NodeContext, url: str, **with_: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await request(ctx, url, **with_)
    return info.value


async def async_wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return bool(predicate())


# -- success paths ----------------------------------------------------------------------------


async def test_get_json_outputs_by_alias(ctx: NodeContext, server: LocalServer) -> None:
    out = (await request(ctx, f"{server.url}/json")).model_dump(by_alias=True)
    assert out["status"] == 200
    assert out["json"] == {"status": "up", "n": 1}
    assert out["body"] == '{"status": "up", "n": 1}'
    assert out["headers"]["content-type"] == "application/json"
    assert out["headers"]["x-multi"] == "one, two"
    assert isinstance(out["elapsed-ms"], int) and out["elapsed-ms"] >= 0
    assert out["url"] == f"{server.url}/json"
    assert out["truncated"] is False


async def test_text_is_not_parsed_and_bad_json_is_null(
    ctx: NodeContext,
    server: LocalServer,
    collect: LogRecorder,
) -> None:
    out = await request(ctx, f"{server.url}/text")
    assert (out.body, out.json_) == ("hello\n", None)
    out = await request(ctx, f"{server.url}/badjson")
    assert (out.body, out.json_) == ("{not json", None)
    assert any("not valid JSON" in m for m in collect.messages())


async def test_method_headers_query_and_json_body_reach_the_server(ctx: NodeContext, server: LocalServer) -> None:
    out = await request(
        ctx,
        f"{server.url}/echo?keep=1",
        method="post",
        headers={"X-Trace": "abc", "X-Count": 3},
        query={"a": "1", "tags": ["x", "y"], "flag": True},
        json={"name": "web1", "replicas": 2},
    )
    echoed = out.json_
    assert echoed["method"] == "POST"
    assert echoed["query"] == {"keep": ["1"], "a": ["1"], "tags": ["x", "y"], "flag": ["true"]}
    assert echoed["headers"]["x-trace"] == "abc" and echoed["headers"]["x-count"] == "3"
    assert echoed["headers"]["content-type"] == "application/json"
    assert echoed["body"] == '{"name":"web1","replicas":2}'


async def test_text_and_form_bodies(ctx: NodeContext, server: LocalServer) -> None:
    out = await request(
        ctx, f"{server.url}/echo", method="PUT", body="raw text", headers={"Content-Type": "text/plain"}
    )
    assert out.json_["body"] == "raw text" and out.json_["method"] == "PUT"
    out = await request(ctx, f"{server.url}/echo", method="POST", form={"user": "ops", "n": 1})
    assert out.json_["body"] == "user=ops&n=1"
    assert out.json_["headers"]["content-type"] == "application/x-www-form-urlencoded"


async def test_json_null_is_sent_when_given(ctx: NodeContext, server: LocalServer) -> None:
    out = await request(ctx, f"{server.url}/echo", method="POST", json=None)
    assert out.json_["body"] == "null"


async def test_basic_and_bearer_auth_reach_the_server(ctx: NodeContext, server: LocalServer) -> None:
    out = await request(ctx, f"{server.url}/echo", auth={"type": "basic", "username": "ops", "password": "pw:1"})
    assert out.json_["headers"]["authorization"] == "Basic " + base64.b64encode(b"ops:pw:1").decode()
    out = await request(ctx, f"{server.url}/echo", auth={"type": "bearer", "token": "tok-123"})
    assert out.json_["headers"]["authorization"] == "Bearer tok-123"
    # The response's own headers never include the request's Authorization.
    assert "authorization" not in out.headers


async def test_head_request(ctx: NodeContext, server: LocalServer) -> None:
    out = await request(ctx, f"{server.url}/text", method="HEAD")
    assert (out.status, out.body) == (200, "")


async def test_localhost_name_resolves_and_connects_to_the_checked_address(
    ctx: NodeContext, server: LocalServer, collect: LogRecorder
) -> None:
    port = server.server_address[1]
    out = await request(ctx, f"http://localhost:{port}/echo")
    assert out.status == 200
    assert out.json_["headers"]["host"] == f"localhost:{port}"  # Host header keeps the name
    assert any(c.startswith("connecting to localhost (127.0.0.1)") for c in connections(collect))


# -- status, redirects, bodies ----------------------------------------------------------------


async def test_unexpected_status_fails_retryably_with_details(ctx: NodeContext, server: LocalServer) -> None:
    err = await failure(ctx, f"{server.url}/status/503")
    assert err.type == "WaterflowStepFailed" and not err.non_retryable
    assert err.message.startswith(f"GET {server.url}/status/503 returned 503, expected 2xx")
    assert "status 503 body" in err.message
    details = err.details[0]
    assert details["status"] == 503 and details["body"] == "status 503 body"


async def test_expect_status_list_and_single_value(ctx: NodeContext, server: LocalServer) -> None:
    assert (await request(ctx, f"{server.url}/status/404", **{"expect-status": [404, 410]})).status == 404
    assert (await request(ctx, f"{server.url}/status/204", **{"expect-status": 204})).status == 204
    err = await failure(ctx, f"{server.url}/text", **{"expect-status": [201]})
    assert "returned 200, expected 201" in err.message


async def test_flaky_endpoint_fails_until_healthy(ctx: NodeContext, server: LocalServer) -> None:
    # What `retry:` does, attempt by attempt: the same step fails twice, then succeeds.
    url = f"{server.url}/flaky/direct/2"
    for _ in range(2):
        assert "returned 503" in (await failure(ctx, url)).message
    assert (await request(ctx, url)).body == "healthy"


async def test_redirect_chain_is_followed_or_not(ctx: NodeContext, server: LocalServer) -> None:
    out = await request(ctx, f"{server.url}/chain/3")
    assert (out.status, out.body, out.url) == (200, "end of chain", f"{server.url}/chain/0")
    out = await request(ctx, f"{server.url}/chain/3", **{"follow-redirects": False, "expect-status": [302]})
    assert out.headers["location"] == "/chain/2"
    err = await failure(ctx, f"{server.url}/chain/11")
    assert "more than 10 redirects" in err.message


async def test_authorization_is_dropped_when_a_redirect_leaves_the_origin(
    ctx: NodeContext, server: LocalServer
) -> None:
    port = server.server_address[1]
    target = f"http://localhost:{port}/echo"  # another origin (host differs), same server
    out = await request(ctx, f"{server.url}/redirect?to={target}", auth={"type": "bearer", "token": "tok"})
    assert out.json_["path"] == "/echo"
    assert "authorization" not in out.json_["headers"]
    same = await request(ctx, f"{server.url}/redirect?to=/echo", auth={"type": "bearer", "token": "tok"})
    assert same.json_["headers"]["authorization"] == "Bearer tok"


async def test_max_body_bytes_truncates(ctx: NodeContext, server: LocalServer) -> None:
    out = await request(ctx, f"{server.url}/big/200000", **{"max-body-bytes": 1000})
    assert (len(out.body), out.truncated) == (1000, True)
    out = await request(ctx, f"{server.url}/big/1000", **{"max-body-bytes": 1000})
    assert (len(out.body), out.truncated) == (1000, False)
    out = await request(ctx, f"{server.url}/json", **{"max-body-bytes": 5})
    assert (out.body, out.json_, out.truncated) == ('{"sta', None, True)
    with pytest.raises(ValidationError, match="max-body-bytes"):
        RequestInputs.model_validate({"url": server.url, "max-body-bytes": MAX_BODY_LIMIT + 1})


async def test_timeout_bounds_the_whole_request(ctx: NodeContext, server: LocalServer) -> None:
    # /slow sends a byte every 50 ms: no single read times out, the whole-request deadline does.
    err = await failure(ctx, f"{server.url}/slow", timeout="300ms")
    assert err.type == "WaterflowStepFailed" and not err.non_retryable
    assert "timed out after 0.3s" in err.message


async def test_connection_refused_is_retryable(ctx: NodeContext, server: LocalServer) -> None:
    with socket.socket() as sock:  # bind a port, then free it: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    err = await failure(ctx, f"http://127.0.0.1:{port}/")
    assert err.type == "WaterflowStepFailed" and not err.non_retryable
    assert "ConnectError" in err.message


async def test_password_in_url_is_redacted(ctx: NodeContext, server: LocalServer) -> None:
    url = server.url.replace("http://", "http://ops:hunter2@") + "/status/500"
    err = await failure(ctx, url)
    assert "hunter2" not in err.message and "ops:***@" in err.message


async def test_cancellation_closes_the_connection(ctx: NodeContext, server: LocalServer) -> None:
    task = asyncio.create_task(request(ctx, f"{server.url}/slow", timeout="5m"))
    assert await async_wait_until(lambda: "slow started" in server.seen.events)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await async_wait_until(lambda: "slow disconnected" in server.seen.events)


# -- network policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://169.254.10.20:8080/", "169.254.10.20"),
        ("http://[::ffff:169.254.169.254]/", "169.254.169.254"),
        ("http://[::ffff:a9fe:a9fe]/", "169.254.169.254"),
        ("http://[fe80::1]/", "fe80::1"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254"),
        ("http://[64:ff9b::169.254.169.254]/", "64:ff9b::a9fe:a9fe"),
        ("http://2852039166/", "169.254.169.254"),  # decimal form, resolved by getaddrinfo
    ],
)
async def test_link_local_and_metadata_addresses_are_refused_before_connecting(
    ctx: NodeContext, collect: LogRecorder, url: str, address: str
) -> None:
    err = await failure(ctx, url)
    assert err.type == "WaterflowHttpRefused" and err.non_retryable
    assert "refused by the agent's network policy" in err.message and address in err.message
    assert connections(collect) == []


@pytest.mark.parametrize("host", ["metadata.google.internal", "METADATA.google.internal."])
async def test_metadata_host_name_is_refused_without_resolving(
    ctx: NodeContext,
    collect: LogRecorder,
    host: str,
) -> None:
    err = await failure(ctx, f"http://{host}/computeMetadata/v1/")
    assert err.type == "WaterflowHttpRefused" and err.non_retryable
    assert "metadata.google.internal" in err.message.lower() and "denied" in err.message
    assert connections(collect) == []


async def test_redirect_to_a_denied_address_is_refused(
    ctx: NodeContext,
    server: LocalServer,
    collect: LogRecorder,
) -> None:
    for target in ("http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/", "http://metadata.google.internal/"):
        err = await failure(ctx, f"{server.url}/redirect?to={target}")
        assert err.type == "WaterflowHttpRefused" and err.non_retryable, target
    # Only the test server was ever connected to.
    assert connections(collect) and all("(127.0.0.1)" in c for c in connections(collect))
    assert server.seen.paths() == ["/redirect"] * 3


async def test_denied_cidr_from_the_environment(
    ctx: NodeContext, server: LocalServer, collect: LogRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATERFLOW_HTTP_DENY", "10.0.0.0/8, 127.0.0.0/8")
    err = await failure(ctx, f"{server.url}/text")
    assert err.type == "WaterflowHttpRefused" and err.non_retryable
    assert "127.0.0.1" in err.message and "127.0.0.0/8" in err.message
    err = await failure(ctx, f"http://[::ffff:127.0.0.1]:{server.server_address[1]}/text")
    assert err.type == "WaterflowHttpRefused"
    assert connections(collect) == [] and server.seen.requests == []


async def test_denied_host_name_and_subdomains(
    ctx: NodeContext, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATERFLOW_HTTP_DENY", "localhost")
    port = server.server_address[1]
    assert (await failure(ctx, f"http://localhost:{port}/text")).type == "WaterflowHttpRefused"
    assert (await request(ctx, f"{server.url}/text")).status == 200  # the address itself is not denied
    monkeypatch.setenv("WATERFLOW_HTTP_DENY", "*.internal")
    assert (await failure(ctx, "http://db.corp.internal/")).type == "WaterflowHttpRefused"


async def test_allow_list_limits_destinations_and_deny_wins(
    ctx: NodeContext, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = server.server_address[1]
    monkeypatch.setenv("WATERFLOW_HTTP_ALLOW", "10.0.0.0/8")
    err = await failure(ctx, f"{server.url}/text")
    assert err.type == "WaterflowHttpRefused" and "WATERFLOW_HTTP_ALLOW" in err.message
    monkeypatch.setenv("WATERFLOW_HTTP_ALLOW", "127.0.0.1")
    assert (await request(ctx, f"{server.url}/text")).status == 200
    monkeypatch.setenv("WATERFLOW_HTTP_ALLOW", "localhost")
    assert (await request(ctx, f"http://localhost:{port}/text")).status == 200
    monkeypatch.setenv("WATERFLOW_HTTP_ALLOW", "127.0.0.0/8, 169.254.0.0/16")
    assert (await failure(ctx, "http://169.254.169.254/")).type == "WaterflowHttpRefused"  # built-in deny wins
    monkeypatch.setenv("WATERFLOW_HTTP_DENY", "127.0.0.1")
    assert (await failure(ctx, f"{server.url}/text")).type == "WaterflowHttpRefused"  # deny wins


async def test_invalid_policy_entry_fails_clearly(
    ctx: NodeContext, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATERFLOW_HTTP_DENY", "10.0.0.0/33")
    err = await failure(ctx, f"{server.url}/text")
    assert err.type == "WaterflowBadInput" and err.non_retryable
    assert "WATERFLOW_HTTP_DENY" in err.message and "10.0.0.0/33" in err.message


# -- inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("with_", "field"),
    [
        ({"url": "ftp://x/"}, "url"),
        ({"url": "localhost:8080/x"}, "url"),
        ({"url": "http://x/", "method": "GE T"}, "method"),
        ({"url": "http://x/", "timeout": "soon"}, "timeout"),
        ({"url": "http://x/", "expect-status": [99]}, "expect-status"),
        ({"url": "http://x/", "expect-status": []}, "expect-status"),
        ({"url": "http://x/", "auth": {"type": "digest", "username": "u"}}, "auth"),
        ({"url": "http://x/", "auth": {"type": "bearer"}}, "auth"),
        ({"url": "http://x/", "max-body-bytes": -1}, "max-body-bytes"),
        ({"url": "http://x/", "max_body": 1}, "max_body"),
    ],
)
def test_bad_inputs_name_the_field(with_: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RequestInputs.model_validate(with_)
    assert field in str(info.value)


def test_body_inputs_are_mutually_exclusive() -> None:
    with pytest.raises(ValidationError, match="mutually exclusive; got json and form"):
        RequestInputs.model_validate({"url": "http://x/", "json": {}, "form": {"a": "b"}})
    with pytest.raises(ValidationError, match="mutually exclusive; got body and form"):
        RequestInputs.model_validate({"url": "http://x/", "body": "", "form": {}})


async def test_missing_ca_bundle_is_bad_input(ctx: NodeContext, server: LocalServer) -> None:
    err = await failure(ctx, f"{server.url}/text", **{"ca-bundle": "missing.pem"})
    assert err.type == "WaterflowBadInput" and err.non_retryable and "ca-bundle" in err.message
    assert server.seen.requests == []


def test_registered_through_the_entry_point() -> None:
    found = {cls.type: info for cls, info in PluginManager(allowlist=["http"]).nodes()}
    assert found["http/request"].distribution == "waterflow-node-http"
    registry = NodeRegistry.from_plugins(PluginManager(allowlist=["http"]))
    assert registry.check_with("http/request", {"url": "$<< inputs.url >>", "expect-status": [200]}) == []
    assert [path for path, _ in registry.check_with("http/request", {"url": "http://x/", "expect_statuz": 1})]
