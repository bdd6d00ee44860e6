"""The docker_test_image machinery of waterflow_testing: the offline image and the skip-or-fail rule."""

from __future__ import annotations

import subprocess
import tarfile
import uuid
from io import BytesIO

import pytest

from waterflow_testing.docker import BUSYBOX, busybox_rootfs, docker_problem, ensure_test_image, skip_or_fail


@pytest.mark.unit
def test_without_docker_tests_skip_except_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert docker_problem() == "Docker is unavailable: no `docker` command on PATH"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no `docker` command"):
        skip_or_fail("Docker is unavailable: no `docker` command on PATH")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set: Docker tests never skip in CI"):
        skip_or_fail("Docker is unavailable: no `docker` command on PATH")


@pytest.mark.unit
def test_the_root_file_system_is_busybox_with_users() -> None:
    if not BUSYBOX.is_file():
        skip_or_fail(f"no static busybox at {BUSYBOX}")
    with tarfile.open(fileobj=BytesIO(busybox_rootfs()), mode="r") as tar:
        members = {m.name: m for m in tar.getmembers()}
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None and passwd.read().decode().startswith("root:x:0:0:")
    assert members["bin/busybox"].isfile() and members["bin/busybox"].mode == 0o755
    for applet in ("bin/sh", "usr/sbin/httpd", "usr/bin/wget", "bin/kill", "bin/sleep"):
        assert members[applet].issym() and members[applet].linkname == "/bin/busybox", applet
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777


@pytest.mark.integration
def test_the_image_is_imported_offline_and_runs(docker_test_image: str) -> None:
    tag = f"waterflow-test/busybox:t{uuid.uuid4().hex[:10]}"  # never the shared image
    try:
        assert ensure_test_image(tag) == tag
        assert ensure_test_image(tag) == tag  # already there: nothing to do
        run = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--user", "nobody", tag, "sh", "-c", "id -un; ls -d /tmp"],
            capture_output=True, text=True, check=True, timeout=120,
        )
        assert run.stdout == "nobody\n/tmp\n"
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
