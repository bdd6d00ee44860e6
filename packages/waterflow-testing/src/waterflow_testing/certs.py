"""Certificates made in the test: a CA, server and client certificates, written with ``openssl``.

The ``openssl`` command line is used rather than a Python crypto package so the test environment
needs nothing beyond what every Linux/macOS machine has. Keys are P-256 in PKCS#8 PEM, certificates
are X.509 v3 with the extensions strict verifiers (rustls in Temporal's core, Python's ``ssl``)
insist on: ``basicConstraints``, ``keyUsage``, ``extendedKeyUsage`` and a ``subjectAltName``.

``tls_certs`` (session fixture in :mod:`waterflow_testing.pytest_plugin`) gives a :class:`TestCerts`:
the trusted CA, a server certificate for ``127.0.0.1``/``localhost``, a client certificate, a
server certificate for another host name, and a rogue CA with its own client certificate.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

__all__ = ["CertError", "CertPair", "TestCA", "TestCerts", "make_ca", "make_test_certs"]

DAYS = 2  # long enough for any test session, short enough that a leaked key is soon worthless


class CertError(RuntimeError):
    """``openssl`` is missing or refused to make a certificate."""


@dataclass(frozen=True)
class CertPair:
    """A PEM certificate and its private key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class TestCA:
    """A certificate authority whose key stays in ``directory``; :meth:`issue` signs leaf certificates."""

    __test__ = False  # not a pytest test class despite the name

    name: str
    directory: Path
    cert: Path
    key: Path

    def issue(self, name: str, *, hosts: Sequence[str] = (), client: bool = False) -> CertPair:
        """A certificate for ``name``: a server one for ``hosts`` (IPs or DNS names), or a client one."""
        if not client and not hosts:
            raise ValueError("a server certificate needs at least one host")
        base = self.directory / name
        _openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{base}.key", "-out", f"{base}.csr", "-subj", f"/CN={name}",
        )  # fmt: skip
        extensions = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature",
            f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}",
        ]
        alt_names = [f"{'IP' if _is_ip(host) else 'DNS'}:{host}" for host in hosts]
        if client and not alt_names:
            alt_names = [f"DNS:{name}"]
        extensions.append("subjectAltName=" + ",".join(alt_names))
        ext_file = Path(f"{base}.ext")
        ext_file.write_text("\n".join(extensions) + "\n")
        _openssl(
            "x509", "-req", "-in", f"{base}.csr", "-CA", str(self.cert), "-CAkey", str(self.key),
            "-CAcreateserial", "-out", f"{base}.pem", "-days", str(DAYS), "-sha256", "-extfile", str(ext_file),
        )  # fmt: skip
        return CertPair(Path(f"{base}.pem"), Path(f"{base}.key"))


@dataclass(frozen=True)
class TestCerts:
    """Everything a TLS test needs, all in one temporary directory."""

    __test__ = False

    ca: TestCA
    server: CertPair  # for 127.0.0.1 and localhost, signed by ``ca``
    client: CertPair  # a client certificate signed by ``ca``
    other_host: CertPair  # signed by ``ca`` for ``other.invalid`` only: a host name mismatch
    rogue_ca: TestCA  # a CA nobody trusts
    rogue_client: CertPair  # a client certificate signed by ``rogue_ca``


def make_ca(directory: Path, name: str = "waterflow-test-ca") -> TestCA:
    """A fresh self-signed CA in ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", str(DAYS), "-sha256", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return TestCA(name, directory, cert, key)


def make_test_certs(directory: Path) -> TestCerts:
    """The standard set (see :class:`TestCerts`) in ``directory``."""
    ca = make_ca(directory / "ca")
    rogue = make_ca(directory / "rogue", "waterflow-rogue-ca")
    return TestCerts(
        ca=ca,
        server=ca.issue("server", hosts=["127.0.0.1", "localhost"]),
        client=ca.issue("client", client=True),
        other_host=ca.issue("other-host", hosts=["other.invalid"]),
        rogue_ca=rogue,
        rogue_client=rogue.issue("rogue-client", client=True),
    )


def _is_ip(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def _openssl(*args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise CertError("the 'openssl' command is needed to make test certificates")
    done = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CertError(f"openssl {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
