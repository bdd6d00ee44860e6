"""Connecting to Temporal the way every Waterflow process does.

One data converter (pydantic, so models such as :class:`~waterflow_core.steptask.StepTask` cross
the wire as JSON and come back typed), one set of settings read from the environment, and the
list of modules a workflow sandbox passes through.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from waterflow_core.errors import WaterflowError

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_NAMESPACE",
    "SANDBOX_PASSTHROUGH",
    "TemporalSettings",
    "TemporalSettingsError",
    "TemporalUnreachable",
    "connect",
    "release_failed_worker",
    "sandboxed_runner",
]

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"

# Modules a workflow sandbox imports once, outside the sandbox, instead of re-importing them for
# every workflow run. They are deterministic (no I/O, clocks or randomness at import or call
# time in the code paths workflows use) and expensive to import: the Lark grammar alone takes
# tens of milliseconds, and pydantic models must be the same classes inside and outside so the
# data converter's type hints match.
SANDBOX_PASSTHROUGH: tuple[str, ...] = (
    "waterflow_core",
    # Named on its own as well: the workflow and the worker host must share its sink (ADR 0031),
    # whatever becomes of the package-wide entry.
    "waterflow_core.events",
    "lark",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_inspection",
    "pluggy",
)


def sandboxed_runner(*extra_passthrough: str) -> SandboxedWorkflowRunner:
    """The workflow runner for Waterflow workflow workers: the default sandbox plus passthrough."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(
        *SANDBOX_PASSTHROUGH, *extra_passthrough
    )
    return SandboxedWorkflowRunner(restrictions=restrictions)


def release_failed_worker(worker: Worker) -> None:
    """Free the task queue of a worker whose ``run()`` failed before it started polling.

    The SDK finalizes a worker on its way out of ``run()`` only once it has started; one that
    failed its start-up check (the namespace could not be described: Temporal unreachable or
    not answering) keeps its registration, and every new worker of the same queue in this
    process is refused ("multiple workers with overlapping worker task types"). A supervisor
    that rebuilds workers (the agent's, the server's) calls this after each failure; for a
    worker that did start it does nothing (its ``run()`` already finalized it). Initiating the
    shutdown frees the queue; finalizing it would wait for pollers that never ran.
    """
    bridge = getattr(worker, "_bridge_worker", None)
    if bridge is None or getattr(bridge, "_ref", None) is None:
        return
    with contextlib.suppress(Exception):
        bridge.initiate_shutdown()


class TemporalSettingsError(WaterflowError, ValueError):
    """The TLS settings cannot work as given (a certificate without its key, an unreadable file)."""


class TemporalUnreachable(WaterflowError):
    """Connecting to Temporal failed; the message says where, why, and which setting may fix it."""


# Substrings of the Temporal core's (rustls/tonic) connection errors, and what usually fixes them.
_TLS_HINTS = (
    ("UnknownIssuer", "its certificate is not signed by a CA this process trusts: "
     "set WATERFLOW_TEMPORAL_TLS_CA to the CA that signed it"),
    ("NotValidForName", "its certificate does not name the host in WATERFLOW_TEMPORAL_ADDRESS: "
     "set WATERFLOW_TEMPORAL_TLS_SERVER_NAME to a name it carries"),
    ("Expired", "its certificate has expired (or this machine's clock is wrong)"),
    ("CertificateRequired", "it requires a client certificate (WATERFLOW_TEMPORAL_TLS_CERT and _TLS_KEY)"),
    ("BadCertificate", "it refused this client certificate"),
    # With TLS 1.3 a server refuses a client certificate after the client considers the
    # handshake done, so the client only sees the connection drop on its first call.
    ("error after connection", "it dropped the connection after the TLS handshake: it may require a client "
     "certificate (WATERFLOW_TEMPORAL_TLS_CERT and _TLS_KEY) or refuse this one"),
)  # fmt: skip
_PLAINTEXT_HINT = "if this Temporal serves TLS, set WATERFLOW_TEMPORAL_TLS=true or WATERFLOW_TEMPORAL_TLS_CA"


def _hint(error: str, tls: bool) -> str | None:
    if not tls:
        return _PLAINTEXT_HINT if "error after connection" in error else None
    return next((hint for needle, hint in _TLS_HINTS if needle in error), None)


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise TemporalSettingsError(f"WATERFLOW_TEMPORAL_{variable}: cannot read {path}: {err.strerror}") from None


class TemporalSettings(BaseModel):
    """Where Temporal is and how to authenticate, as read from ``WATERFLOW_TEMPORAL_*``.

    ``tls_cert`` + ``tls_key`` give mutual TLS, ``tls_ca`` pins the server's CA, ``tls_server_name``
    is the name the server's certificate must carry when it is not the host in ``address``,
    ``api_key`` is a bearer token (Temporal Cloud). ``tls`` forces TLS with the system roots when
    no file is set.
    """

    address: str = DEFAULT_ADDRESS
    namespace: str = DEFAULT_NAMESPACE
    tls: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    tls_server_name: str | None = None
    api_key: SecretStr | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TemporalSettings:
        """Read ``WATERFLOW_TEMPORAL_{ADDRESS,NAMESPACE,TLS,TLS_CERT,TLS_KEY,TLS_CA,TLS_SERVER_NAME,API_KEY}``."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(f"WATERFLOW_TEMPORAL_{name}", "").strip()
            return value or None

        return cls.model_validate(
            {
                "address": get("ADDRESS") or DEFAULT_ADDRESS,
                "namespace": get("NAMESPACE") or DEFAULT_NAMESPACE,
                "tls": (get("TLS") or "").lower() in {"1", "true", "yes", "on"},
                "tls_cert": get("TLS_CERT"),
                "tls_key": get("TLS_KEY"),
                "tls_ca": get("TLS_CA"),
                "tls_server_name": get("TLS_SERVER_NAME"),
                "api_key": get("API_KEY"),
            }
        )

    def tls_config(self) -> bool | TLSConfig | None:
        """What :func:`connect` should pass as ``tls``.

        ``None`` lets the SDK decide (TLS exactly when an API key is set, as Temporal Cloud needs).
        Raises :class:`TemporalSettingsError` naming the variable at fault.
        """
        if (self.tls_cert is None) != (self.tls_key is None):
            raise TemporalSettingsError("WATERFLOW_TEMPORAL_TLS_CERT and _TLS_KEY must be set together")
        if self.tls_cert or self.tls_ca or self.tls_server_name:
            return TLSConfig(
                domain=self.tls_server_name,
                server_root_ca_cert=_read(self.tls_ca, "TLS_CA") if self.tls_ca else None,
                client_cert=_read(self.tls_cert, "TLS_CERT") if self.tls_cert else None,
                client_private_key=_read(self.tls_key, "TLS_KEY") if self.tls_key else None,
            )
        return True if self.tls else None

    async def connect(self, *, identity: str | None = None) -> Client:
        """A client for these settings (see :func:`connect`).

        Raises :class:`TemporalSettingsError` for settings that cannot work and
        :class:`TemporalUnreachable` (with a hint when the cause looks like TLS) when the
        connection fails.
        """
        tls = self.tls_config()
        try:
            return await connect(
                self.address,
                self.namespace,
                tls=tls,
                api_key=self.api_key.get_secret_value() if self.api_key else None,
                identity=identity,
            )
        except RuntimeError as err:  # the Temporal core reports every connect failure this way
            uses_tls = tls not in (None, False) or self.api_key is not None
            hint = _hint(str(err), uses_tls)
            mode = "TLS" if uses_tls else "plain text"
            message = f"cannot connect to Temporal at {self.address} ({mode}): {err}"
            raise TemporalUnreachable(f"{message}; {hint}" if hint else message) from err


async def connect(
    address: str,
    namespace: str = DEFAULT_NAMESPACE,
    *,
    tls: bool | TLSConfig | None = None,
    api_key: str | None = None,
    identity: str | None = None,
) -> Client:
    """Connect a Temporal client with Waterflow's data converter.

    ``tls=None`` means TLS only when ``api_key`` is given; pass ``False`` to force plain text.
    """
    return await Client.connect(
        address,
        namespace=namespace,
        tls=tls,
        api_key=api_key,
        data_converter=pydantic_data_converter,
        identity=identity,
    )
