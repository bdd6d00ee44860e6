"""Temporal connection settings read from WATERFLOW_TEMPORAL_*."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import TLSConfig

from waterflow_core.steptask import StepResult
from waterflow_core.temporal import TemporalSettings
from waterflow_testing.devserver import DevServer


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
    with pytest.raises(ValueError, match="together"):
        settings.tls_config()


async def test_connect_uses_pydantic_converter(temporal_dev: DevServer) -> None:
    client = await TemporalSettings(address=temporal_dev.address).connect()
    assert isinstance(client, Client)
    payload = client.data_converter.payload_converter.to_payloads([StepResult(agent="a")])[0]
    assert client.data_converter.payload_converter.from_payload(payload, StepResult).agent == "a"
