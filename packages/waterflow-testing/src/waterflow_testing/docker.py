"""A real Docker daemon for tests: the offline test image and the skip-or-fail rule.

``docker_test_image`` (session fixture) makes sure the image ``waterflow-test/busybox:latest``
exists and returns its name. Nothing is pulled: the image is built with ``docker import`` from a
root file system made here out of the host's static busybox (Debian's ``busybox-static``,
``/usr/bin/busybox``): the binary, a symlink per applet, ``/etc/passwd`` with ``root`` and
``nobody``, and ``/tmp``. Containers of it need no network (use ``network_mode: none`` or
``host``).

Where Docker cannot be used (no ``docker`` command, a daemon that does not answer, no static
busybox) the tests that need it are skipped with the reason, except in CI: when the ``CI``
environment variable is set to anything non-empty, they fail instead, so CI never goes green by
skipping Docker. :func:`skip_or_fail` applies the same rule to other missing tools (compose).

Standard library only, so loading the pytest plugin stays cheap.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = [
    "BUSYBOX",
    "TEST_IMAGE",
    "busybox_rootfs",
    "docker_problem",
    "docker_test_image",
    "ensure_test_image",
    "skip_or_fail",
]

TEST_IMAGE = "waterflow-test/busybox:latest"
BUSYBOX = Path("/usr/bin/busybox")
DOCKER_TIMEOUT = 60.0
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it when ``$CI`` is set: CI must not skip Docker tests."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: Docker tests never skip in CI)", pytrace=False)
    pytest.skip(reason)


def docker_problem(busybox: Path = BUSYBOX) -> str | None:
    """Why the Docker tests cannot run here, or ``None`` when they can."""
    if shutil.which("docker") is None:
        return "Docker is unavailable: no `docker` command on PATH"
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"Docker is unavailable: `docker info` did not answer within {DOCKER_TIMEOUT:.0f}s"
    if info.returncode != 0:
        return f"Docker is unavailable: `docker info` failed: {info.stderr.strip() or info.stdout.strip()}"
    if not busybox.is_file():
        return f"no static busybox at {busybox} to build {TEST_IMAGE} from (apt-get install busybox-static)"
    return None


def _applets(busybox: Path) -> list[str]:
    listing = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout
    # Paths such as `usr/bin/wget`; `bin/busybox` is the binary itself.
    return [line.strip() for line in listing.splitlines() if line.strip() and line.strip() != "bin/busybox"]


def _add(tar: tarfile.TarFile, name: str, kind: bytes, *, mode: int, data: bytes = b"", target: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, target
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def busybox_rootfs(busybox: Path = BUSYBOX) -> bytes:
    """An uncompressed tar of a minimal root file system built around ``busybox``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directories = {"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "tmp"}
        directories |= {str(Path(path).parent) for path in _applets(busybox) if "/" in path}
        for directory in sorted(directories):
            _add(tar, directory, tarfile.DIRTYPE, mode=0o1777 if directory == "tmp" else 0o755)
        _add(tar, "bin/busybox", tarfile.REGTYPE, mode=0o755, data=busybox.read_bytes())
        for path in _applets(busybox):
            _add(tar, path, tarfile.SYMTYPE, mode=0o777, target="/bin/busybox")
        _add(tar, "etc/passwd", tarfile.REGTYPE, mode=0o644, data=PASSWD)
        _add(tar, "etc/group", tarfile.REGTYPE, mode=0o644, data=GROUP)
    return buffer.getvalue()


def ensure_test_image(tag: str = TEST_IMAGE, busybox: Path = BUSYBOX) -> str:
    """Make sure image ``tag`` exists (importing it offline when it does not); return ``tag``."""
    inspect = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    if inspect.returncode == 0:
        return tag
    imported = subprocess.run(
        ["docker", "import", "--change", 'CMD ["/bin/sh"]', "-", tag],
        input=busybox_rootfs(busybox),
        capture_output=True,
        timeout=DOCKER_TIMEOUT,
        check=False,
    )
    if imported.returncode != 0:
        raise RuntimeError(f"docker import of {tag} failed: {imported.stderr.decode(errors='replace').strip()}")
    return tag


@pytest.fixture(scope="session")
def docker_test_image() -> str:
    """The name of the offline busybox test image, built on first use; skips (fails in CI) without Docker."""
    problem = docker_problem()
    if problem is not None:
        skip_or_fail(problem)
    return ensure_test_image()
