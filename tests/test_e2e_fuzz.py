"""The published OpenAPI schema drives a fuzzer (schemathesis) against a real server and Temporal.

Every operation gets schema-shaped and malformed requests; no answer may be a 5xx, and every
answer must match the schema's statuses, content types and bodies. Examples are derandomized
and bounded so CI runs the same requests in about a minute.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from waterflow_testing.devserver import DevServer
from waterflow_testing.server import ServerProcess

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 30


@pytest.fixture(scope="module")
def fuzzed_server(temporal_dev: DevServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One ``waterflow server`` process for every operation's examples."""
    workdir = tmp_path_factory.mktemp("fuzz")
    # With a token: the configuration a server exposed beyond loopback must have.
    token = f"fuzz-{secrets.token_hex(16)}"
    server = ServerProcess(temporal_dev.address, workdir=workdir, namespace=temporal_dev.namespace, token=token)
    server.start()
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def _auth_headers(server: ServerProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"} if server.token else {}


# The checks that hold for any request: no 5xx, and answers that match the published schema.
# (Others, like "a schema-valid body is accepted", do not fit an API whose bodies carry a
# workflow text that the schema cannot describe.)
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _fuzz(operation: Any, mode: GenerationMode, server: ServerProcess, headers: dict[str, str], seen: set[int]) -> None:
    """Send ``MAX_EXAMPLES`` generated requests to one operation; record the statuses in ``seen``."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def fuzz(case: Any) -> None:
        response = case.call_and_validate(base_url=server.url, headers=headers, checks=CONFORMANCE, timeout=30)
        seen.add(response.status_code)

    fuzz()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_api_answers_every_request_within_its_schema(fuzzed_server: ServerProcess, mode: GenerationMode) -> None:
    headers = _auth_headers(fuzzed_server)
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json", headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    # The fuzzer must see the whole API, or a route missing from the schema goes unfuzzed.
    assert {"POST /v1/workflows", "GET /v1/workflows", "GET /healthz", "GET /metrics"} <= labels
    failures: dict[str, str] = {}
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        seen = statuses.setdefault(operation.label, set())
        try:
            _fuzz(operation, mode, fuzzed_server, headers, seen)
        except Unsatisfiable:
            # Nothing to break: an operation without parameters or body has no negative case.
            assert mode == GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # noqa: BLE001 - every operation is fuzzed, failures reported together
            failures[operation.label] = str(exc)
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    # The requests got past authentication: a fuzzer that only ever met 401 tested nothing.
    assert any(statuses.values()) and all(codes - {401, 403} for codes in statuses.values() if codes), statuses
