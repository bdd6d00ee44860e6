"""Temporal connection settings read from WATERFLOW_TEMPORAL_*."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import TLSConfig

from waterflow_core.steptask import StepResult
from waterflow_core.temporal import TemporalSettings, TemporalSettingsError, TemporalUnreachable
from waterflow_testing.certs import TestCerts
from waterflow_testing.devserver import DevServer
from waterflow_testing.pytest_plugin import eventually
from waterflow_testing.tlsproxy import TLSProxy


def test_defaults_without_environment() -> None:
    settings = TemporalSettings.from_env({})
    assert settings.address == "127.0.0.1:7233"
    assert settings.namespace == "default"
    assert settings.tls_config() is None


def test_mutual_tls_and_api_key_from_environment(tmp_path: Path) -> None:
    for name in ("cert", "key", "ca"):
        (tmp_path / name).write_bytes(name.encode())
    settings = TemporalSettings.from_env(
        {
            "WATERFLOW_TEMPORAL_ADDRESS": "temporal.example:7233",
            "WATERFLOW_TEMPORAL_NAMESPACE": "ops",
            "WATERFLOW_TEMPORAL_TLS_CERT": str(tmp_path / "cert"),
            "WATERFLOW_TEMPORAL_TLS_KEY": str(tmp_path / "key"),
            "WATERFLOW_TEMPORAL_TLS_CA": str(tmp_path / "ca"),
            "WATERFLOW_TEMPORAL_API_KEY": "k3y",
        }
    )
    tls = settings.tls_config()
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key, tls.server_root_ca_cert) == (b"cert", b"key", b"ca")
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "k3y"
    assert "k3y" not in repr(settings)  # a settings dump in a log must not leak the key


def test_tls_flag_without_files_uses_system_roots() -> None:
    assert TemporalSettings.from_env({"WATERFLOW_TEMPORAL_TLS": "true"}).tls_config() is True


def test_cert_without_key_is_refused(tmp_path: Path) -> None:
    settings = TemporalSettings(tls_cert=tmp_path / "cert")
    with pytest.raises(TemporalSettingsError, match="together"):
        settings.tls_config()


def test_unreadable_tls_file_names_its_variable(tmp_path: Path) -> None:
    settings = TemporalSettings.from_env({"WATERFLOW_TEMPORAL_TLS_CA": str(tmp_path / "missing.pem")})
    with pytest.raises(TemporalSettingsError, match=r"WATERFLOW_TEMPORAL_TLS_CA: cannot read .*missing\.pem"):
        settings.tls_config()


async def test_connect_uses_pydantic_converter(temporal_dev: DevServer) -> None:
    client = await TemporalSettings(address=temporal_dev.address).connect()
    assert isinstance(client, Client)
    payload = client.data_converter.payload_converter.to_payloads([StepResult(agent="a")])[0]
    assert client.data_converter.payload_converter.from_payload(payload, StepResult).agent == "a"


# -- through TLS: the dev server behind a TLS proxy with certificates made in the test -----------


@pytest.fixture
def tls_temporal(temporal_dev: DevServer, tls_certs: TestCerts) -> Iterator[TLSProxy]:
    """The session's Temporal behind TLS (server certificate for 127.0.0.1 and localhost)."""
    with TLSProxy(temporal_dev.address, tls_certs.server.cert, tls_certs.server.key) as proxy:
        yield proxy


@pytest.fixture
def mtls_temporal(temporal_dev: DevServer, tls_certs: TestCerts) -> Iterator[TLSProxy]:
    """The session's Temporal behind mutual TLS: clients need a certificate from the test CA."""
    cert, key = tls_certs.server.cert, tls_certs.server.key
    with TLSProxy(temporal_dev.address, cert, key, client_ca=tls_certs.ca.cert) as proxy:
        yield proxy


async def _answers(client: Client) -> bool:
    response = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))
    return response.namespace_info.name == "default"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_tls_with_the_ca_from_environment(tls_temporal: TLSProxy, tls_certs: TestCerts, host: str) -> None:
    settings = TemporalSettings.from_env(
        {
            "WATERFLOW_TEMPORAL_ADDRESS": f"{host}:{tls_temporal.port}",
            "WATERFLOW_TEMPORAL_TLS_CA": str(tls_certs.ca.cert),
        }
    )
    assert await _answers(await settings.connect())
    assert tls_temporal.accepted >= 1 and not tls_temporal.refused


async def test_server_name_when_the_certificate_does_not_name_the_address(
    temporal_dev: DevServer, tls_certs: TestCerts
) -> None:
    # The certificate is for other.invalid only, as behind a load balancer reached by IP.
    with TLSProxy(temporal_dev.address, tls_certs.other_host.cert, tls_certs.other_host.key) as proxy:
        settings = TemporalSettings(address=proxy.address, tls_ca=tls_certs.ca.cert)
        with pytest.raises(TemporalUnreachable, match=r"NotValidForName.*WATERFLOW_TEMPORAL_TLS_SERVER_NAME"):
            await settings.connect()
        named = TemporalSettings.from_env(
            {
                "WATERFLOW_TEMPORAL_ADDRESS": proxy.address,
                "WATERFLOW_TEMPORAL_TLS_CA": str(tls_certs.ca.cert),
                "WATERFLOW_TEMPORAL_TLS_SERVER_NAME": "other.invalid",
            }
        )
        assert await _answers(await named.connect())


async def test_tls_without_the_ca_is_refused_with_a_hint(tls_temporal: TLSProxy) -> None:
    settings = TemporalSettings.from_env(
        {"WATERFLOW_TEMPORAL_ADDRESS": tls_temporal.address, "WATERFLOW_TEMPORAL_TLS": "true"}
    )
    with pytest.raises(TemporalUnreachable) as info:
        await settings.connect()
    message = str(info.value)
    assert f"cannot connect to Temporal at {tls_temporal.address} (TLS)" in message
    assert "UnknownIssuer" in message and "set WATERFLOW_TEMPORAL_TLS_CA" in message
    assert tls_temporal.accepted == 0


async def test_plain_text_against_tls_says_to_enable_tls(tls_temporal: TLSProxy) -> None:
    with pytest.raises(TemporalUnreachable, match=r"\(plain text\).*WATERFLOW_TEMPORAL_TLS=true"):
        await TemporalSettings(address=tls_temporal.address).connect()


async def test_mutual_tls_with_the_client_certificate(mtls_temporal: TLSProxy, tls_certs: TestCerts) -> None:
    settings = TemporalSettings(
        address=mtls_temporal.address,
        tls_ca=tls_certs.ca.cert,
        tls_cert=tls_certs.client.cert,
        tls_key=tls_certs.client.key,
    )
    assert await _answers(await settings.connect())


@pytest.mark.parametrize("client", ["none", "rogue"])
async def test_mutual_tls_refuses_a_missing_or_foreign_client_certificate(
    mtls_temporal: TLSProxy, tls_certs: TestCerts, client: str
) -> None:
    pair = tls_certs.rogue_client if client == "rogue" else None
    settings = TemporalSettings(
        address=mtls_temporal.address,
        tls_ca=tls_certs.ca.cert,
        tls_cert=pair.cert if pair else None,
        tls_key=pair.key if pair else None,
    )
    with pytest.raises(TemporalUnreachable, match="may require a client certificate"):
        await settings.connect()
    expected = "did not return a certificate" if pair is None else "certificate verify failed"
    # The client may report the drop before the proxy's thread has recorded why.
    await eventually(lambda: any(expected in reason for reason in mtls_temporal.refused))


async def test_api_key_goes_to_the_client_over_tls(tls_temporal: TLSProxy, tls_certs: TestCerts) -> None:
    # The SDK sends the key as gRPC metadata `authorization: Bearer <key>` (the dev server ignores
    # it). Under TLS the proxy cannot see headers, so this checks what the client was given.
    settings = TemporalSettings.from_env(
        {
            "WATERFLOW_TEMPORAL_ADDRESS": tls_temporal.address,
            "WATERFLOW_TEMPORAL_TLS_CA": str(tls_certs.ca.cert),
            "WATERFLOW_TEMPORAL_API_KEY": "k3y-secret",
        }
    )
    client = await settings.connect()
    assert client.service_client.config.api_key == "k3y-secret"
    assert await _answers(client)


async def test_api_key_alone_turns_tls_on(tls_temporal: TLSProxy) -> None:
    # Temporal Cloud: an API key without TLS settings still uses TLS (system roots), so the
    # test CA's certificate is refused rather than the key being sent in plain text.
    settings = TemporalSettings(address=tls_temporal.address, api_key="k3y-secret")  # type: ignore[arg-type]
    with pytest.raises(TemporalUnreachable, match=r"\(TLS\).*UnknownIssuer"):
        await settings.connect()
