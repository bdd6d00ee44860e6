"""Which compose the agent has, and the command lines for it.

``docker compose`` (the v2 plugin) is preferred; ``docker-compose`` is the fallback, and may be v1
(Python) or a v2 standalone binary, told apart by its version. Every command names its files
(``-f``, absolute paths) and its project (``-p``) explicitly, so compose never guesses either from
the working directory or the environment. The command lines are pure functions of their inputs.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import DockerUnavailable

PullPolicy = Literal["missing", "always", "never"]
_VERSION = re.compile(r"v?(\d+(?:\.\d+)*)")

#: Runs a command line; returns (exit status, stdout).
Probe = Callable[[list[str]], Awaitable[tuple[int, str]]]


@dataclass(frozen=True)
class Compose:
    """One compose implementation: the command that runs it and its version."""

    command: tuple[str, ...]
    """Absolute program path plus ``compose`` for the plugin: ``("/usr/bin/docker", "compose")``."""
    version: str

    @property
    def v2(self) -> bool:
        """Compose v2 (plugin or standalone): its flags differ from v1's."""
        major = self.version.split(".", 1)[0]
        return int(major) >= 2 if major.isdigit() else self.plugin

    @property
    def plugin(self) -> bool:
        """``docker compose`` rather than ``docker-compose``."""
        return len(self.command) > 1

    @property
    def name(self) -> str:
        """How users call it: ``docker compose`` or ``docker-compose``."""
        return "docker compose" if self.plugin else "docker-compose"

    def base(self, files: Sequence[str], project: str) -> list[str]:
        """The command, its files and its project: the start of every compose command line."""
        argv = [*self.command, *(["--ansi", "never"] if self.v2 else [])]
        for file in files:
            argv += ["-f", file]
        return [*argv, "-p", project]

    def config(self, files: Sequence[str], project: str) -> list[str]:
        """Print the resolved configuration (YAML); fails on an invalid file."""
        return [*self.base(files, project), "config"]

    def up(self, files: Sequence[str], project: str, services: Sequence[str], pull: PullPolicy) -> list[list[str]]:
        """The command lines that bring ``services`` (all when empty) up, detached.

        v2 applies the pull policy itself; v1 has no ``--pull``: ``always`` becomes a ``pull``
        first, and ``never`` relies on the node checking that the images exist.
        """
        commands: list[list[str]] = []
        up = [*self.base(files, project), "up", "-d"]
        if self.v2 and pull != "missing":
            up += ["--pull", pull]
        elif pull == "always":
            commands.append([*self.base(files, project), "pull", *services])
        commands.append([*up, *services])
        return commands

    def down(
        self, files: Sequence[str], project: str, *, volumes: bool, remove_orphans: bool, timeout: int
    ) -> list[str]:
        """Stop and remove the project's containers and networks (and volumes if asked)."""
        argv = [*self.base(files, project), "down", "-t", str(timeout)]
        if volumes:
            argv.append("-v")
        if remove_orphans:
            argv.append("--remove-orphans")
        return argv


def parse_version(text: str) -> str:
    """``2.24.5`` out of ``v2.24.5`` or ``1.29.2``; ``unknown`` if there is no version."""
    match = _VERSION.search(text.strip())
    return match.group(1) if match else "unknown"


async def detect(probe: Probe, search_path: str | None, agent: str) -> Compose:
    """The compose to use on this agent: the v2 plugin if it answers, else ``docker-compose``."""
    docker = shutil.which("docker", path=search_path)
    if docker is not None:
        status, out = await probe([docker, "compose", "version", "--short"])
        if status == 0:
            return Compose((docker, "compose"), parse_version(out))
    standalone = shutil.which("docker-compose", path=search_path)
    if standalone is not None:
        status, out = await probe([standalone, "version", "--short"])
        if status == 0:
            return Compose((standalone,), parse_version(out))
    raise DockerUnavailable(
        f"neither `docker compose` (the v2 plugin) nor `docker-compose` (v1) works on agent {agent} "
        f"(searched PATH={search_path or ''})",
        retryable=False,
    )
