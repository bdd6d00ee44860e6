"""Real containers and compose projects for the Docker node tests, each removed after its test.

Everything runs on the machine's real Docker daemon with the offline test image
(``docker_test_image`` from waterflow_testing); containers have no network (``none``) unless a
test needs the host's. Names are unique per test, so parallel workers never share a container.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from waterflow_testing.docker import skip_or_fail

DOCKER_TIMEOUT = 120


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The ``docker`` command, output captured."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=DOCKER_TIMEOUT)


@dataclass
class Containers:
    """Starts plain containers of the test image; removes them all at the end."""

    image: str
    names: list[str] = field(default_factory=list)

    def run(self, *args: str, command: tuple[str, ...] = ("sleep", "3600")) -> str:
        """``docker run -d`` a container with a unique name; returns the name."""
        name = f"wf-test-{uuid.uuid4().hex[:10]}"
        docker("run", "-d", "--name", name, "--network", "none", *args, self.image, *command)
        self.names.append(name)
        return name

    @staticmethod
    def processes(name: str) -> list[str]:
        """The command lines of the processes running in container ``name`` (``docker top``)."""
        top = docker("top", name, "-o", "pid,args", check=False)
        return [line.split(None, 1)[1] for line in top.stdout.splitlines()[1:] if line.strip()]

    @staticmethod
    def state(name: str) -> str:
        """``created``, ``running``, ``exited``..."""
        return docker("inspect", "-f", "{{.State.Status}}", name).stdout.strip()

    def remove_all(self) -> None:
        """Force-remove every container started."""
        if self.names:
            docker("rm", "-f", *self.names, check=False)


@dataclass
class ComposeProject:
    """A compose file in a directory named like the project (unique); everything removed at the end.

    The directory's name is the project name, so compose's default project name is this one too.
    """

    parent: Path
    command: list[str]
    name: str = field(default_factory=lambda: f"wftest{uuid.uuid4().hex[:10]}")

    @property
    def directory(self) -> Path:
        """Where the compose file is."""
        return self.parent / self.name

    @property
    def file(self) -> Path:
        """The compose file."""
        return self.directory / "docker-compose.yml"

    def write(self, text: str) -> Path:
        """Write the compose file (dedented); returns its path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.file.write_text(textwrap.dedent(text))
        return self.file

    def compose(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the machine's compose on this project (``up -d``, ``ps``...), as an operator would."""
        argv = [*self.command, "-f", str(self.file), "-p", self.name, *args]
        return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=DOCKER_TIMEOUT)

    def containers(self) -> list[str]:
        """Names of every container (running or not) of this project."""
        label = f"label=com.docker.compose.project={self.name}"
        return sorted(docker("ps", "-a", "--filter", label, "--format", "{{.Names}}").stdout.split())

    def volumes(self) -> list[str]:
        """Names of this project's volumes."""
        label = f"label=com.docker.compose.project={self.name}"
        return sorted(docker("volume", "ls", "-q", "--filter", label).stdout.split())

    def processes(self) -> list[str]:
        """Command lines of this machine's processes that name this project (compose clients)."""
        found = []
        for entry in Path("/proc").iterdir():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if self.name.encode() in argv:
                found.append(b" ".join(argv).decode(errors="replace"))
        return found

    def remove(self) -> None:
        """Remove every container, network and volume the project left, whatever state it is in."""
        names = self.containers()
        if names:
            docker("rm", "-f", "-v", *names, check=False)
        networks = docker("network", "ls", "-q", "--filter", f"label=com.docker.compose.project={self.name}")
        if networks.stdout.split():
            docker("network", "rm", *networks.stdout.split(), check=False)
        volumes = self.volumes()
        if volumes:
            docker("volume", "rm", "-f", *volumes, check=False)


@pytest.fixture
def containers(docker_test_image: str) -> Iterator[Containers]:
    """Plain containers for a test, removed afterwards."""
    started = Containers(docker_test_image)
    yield started
    started.remove_all()


@pytest.fixture(scope="session")
def compose_command(docker_test_image: str) -> list[str]:
    """Which compose this machine has (tests run the real one); skips (fails in CI) without any."""
    if docker("compose", "version", check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose") is not None:
        return ["docker-compose"]
    skip_or_fail("neither `docker compose` nor `docker-compose` is installed")


@pytest.fixture
def compose_project(compose_command: list[str], tmp_path: Path) -> Iterator[ComposeProject]:
    """A compose project directory (not yet written) with a unique name, cleaned up after."""
    project = ComposeProject(tmp_path, compose_command)
    yield project
    project.remove()
