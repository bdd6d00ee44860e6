"""The Temporal trust boundary: the real server and agent reach Temporal over (mutual) TLS only.

``temporal server start-dev`` cannot serve TLS, so :class:`~waterflow_testing.tlsproxy.TLSProxy`
terminates TLS in front of it with certificates made in the test; the processes get nothing but
the proxy's address and ``WATERFLOW_TEMPORAL_TLS_*``. What is refused is refused at the TLS
handshake (the proxy records why), and the processes say so in their output.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from waterflow_sdk import Client
from waterflow_testing import AgentProcess, unique_name
from waterflow_testing.certs import CertPair, TestCerts
from waterflow_testing.devserver import DevServer
from waterflow_testing.server import StartServer
from waterflow_testing.tlsproxy import TLSProxy

pytestmark = pytest.mark.e2e

# The server retries Temporal for 30 s at start-up before it gives up; this bounds the wait.
SERVER_GIVE_UP = 90.0


@pytest.fixture
def mtls_temporal(temporal_dev: DevServer, tls_certs: TestCerts) -> Iterator[TLSProxy]:
    """The session's Temporal behind mutual TLS: a client certificate from the test CA is required."""
    cert, key = tls_certs.server.cert, tls_certs.server.key
    with TLSProxy(temporal_dev.address, cert, key, client_ca=tls_certs.ca.cert) as proxy:
        yield proxy


def tls_env(certs: TestCerts, client: CertPair | None) -> dict[str, str]:
    """``WATERFLOW_TEMPORAL_TLS_*`` trusting the test CA, with ``client`` as the client certificate."""
    env = {"WATERFLOW_TEMPORAL_TLS_CA": str(certs.ca.cert)}
    if client is not None:
        env |= {"WATERFLOW_TEMPORAL_TLS_CERT": str(client.cert), "WATERFLOW_TEMPORAL_TLS_KEY": str(client.key)}
    return env


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[AgentProcess]]:
    """Agents a test starts against the proxy (not ``temporal_dev``); all stopped afterwards."""
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.stop()


def start_tls_agent(
    agents: list[AgentProcess], tmp_path: Path, proxy: TLSProxy, group: str, env: Mapping[str, str]
) -> AgentProcess:
    name = unique_name()
    agent = AgentProcess(name, [group], address=proxy.address, workdir=tmp_path / name, env=env)
    agents.append(agent.start())
    return agent


def test_server_and_agent_run_a_workflow_over_mutual_tls(
    mtls_temporal: TLSProxy,
    tls_certs: TestCerts,
    start_server: StartServer,
    agents: list[AgentProcess],
    tmp_path: Path,
) -> None:
    env = tls_env(tls_certs, tls_certs.client)
    group = unique_name("tls")
    agent = start_tls_agent(agents, tmp_path, mtls_temporal, group, env).wait_ready()
    server = start_server(mtls_temporal.address, env=env)
    workflow = textwrap.dedent(
        f"""
        name: over-tls
        jobs:
          hello:
            runs-on: {group}
            steps:
              - id: greet
                uses: exec/shell
                with: {{command: 'echo "said=hello" >> "$WATERFLOW_OUTPUT"'}}
        """
    )
    with Client(server.url) as client:
        run = client.wait(client.submit(workflow).id, timeout=180, poll=0.2)
    assert run.succeeded, run.error
    step = run.jobs[0].steps[0]
    assert step.agent == agent.name and step.outputs["said"] == "hello"
    assert mtls_temporal.accepted >= 2 and not mtls_temporal.refused


@pytest.mark.parametrize(
    ("client", "refusal"),
    [("none", "did not return a certificate"), ("rogue", "certificate verify failed")],
)
def test_agent_with_a_missing_or_foreign_client_certificate_is_refused(
    mtls_temporal: TLSProxy,
    tls_certs: TestCerts,
    agents: list[AgentProcess],
    tmp_path: Path,
    client: str,
    refusal: str,
) -> None:
    pair = tls_certs.rogue_client if client == "rogue" else None
    agent = start_tls_agent(agents, tmp_path, mtls_temporal, unique_name("tls"), tls_env(tls_certs, pair))
    # The agent's documented behaviour: Temporal unreachable is retried (with backoff) and logged
    # with the reason, never reported ready. Two such lines prove it keeps trying, not hangs.
    line = f"cannot reach Temporal at {mtls_temporal.address}.*may require a client certificate"
    agent.wait_for_output(line)
    agent.wait_for_output(line, start=agent.output.index("cannot reach Temporal") + 1)
    assert re.search(r"\bready\b", agent.output) is None
    assert any(refusal in reason for reason in mtls_temporal.refused), mtls_temporal.refused


def test_agent_without_the_ca_names_the_setting_to_fix(
    mtls_temporal: TLSProxy, agents: list[AgentProcess], tmp_path: Path, tls_certs: TestCerts
) -> None:
    env = {"WATERFLOW_TEMPORAL_TLS": "true"}
    agent = start_tls_agent(agents, tmp_path, mtls_temporal, unique_name("tls"), env)
    agent.wait_for_output(r"UnknownIssuer.*set WATERFLOW_TEMPORAL_TLS_CA")


def test_server_with_a_foreign_client_certificate_exits_with_the_reason(
    mtls_temporal: TLSProxy, tls_certs: TestCerts, start_server: StartServer
) -> None:
    env = tls_env(tls_certs, tls_certs.rogue_client)
    server = start_server(mtls_temporal.address, env=env, ready=False)
    assert server.wait(SERVER_GIVE_UP) == 1
    output = server.output
    assert f"error: cannot reach Temporal at {mtls_temporal.address}" in output
    assert "may require a client certificate" in output and "Traceback" not in output
