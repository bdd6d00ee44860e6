"""Compose containers as the Engine sees them, found by compose's labels.

Compose v1 and v2 name containers differently (``proj_web_1`` / ``proj-web-1``) but label them the
same way, so containers are always found by ``com.docker.compose.project`` / ``.service`` /
``.container-number`` and never by a guessed name. One-off containers (``compose run``) are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .engine import STDERR, STDOUT, Engine, EngineError, FrameReader, path
from .errors import DockerUnavailable

LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_NUMBER = "com.docker.compose.container-number"
LABEL_ONEOFF = "com.docker.compose.oneoff"
#: Restart policies under which an exited container is started again by the daemon.
RESTARTING_POLICIES = frozenset({"always", "unless-stopped"})
HEALTH_OUTPUT_CHARS = 300


class ContainerOutput(BaseModel):
    """One container in the outputs of the compose nodes."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(description="Full container id.")
    name: str = Field(description="Container name (`proj_web_1` with compose v1, `proj-web-1` with v2).")
    service: str = Field(description="Compose service.")
    number: int = Field(description="Replica number (`com.docker.compose.container-number`), from 1.")
    state: str = Field(description="created, running, paused, restarting, removing, exited or dead.")
    health: str = Field(description="healthy, unhealthy, starting, or none (no healthcheck).")
    exit_code: int | None = Field(alias="exit-code", description="Exit code once exited, else null.")
    image: str = Field(description="Image as configured (`busybox:1.36`).")


@dataclass(frozen=True)
class Container:
    """What the nodes need to know about one container (from ``GET /containers/{id}/json``)."""

    id: str
    name: str
    service: str
    number: int
    state: str
    health: str
    exit_code: int | None
    image: str
    restart_policy: str
    tty: bool
    last_health_output: str

    @classmethod
    def from_inspect(cls, data: dict[str, Any]) -> Container:
        """Build from the Engine's inspect answer."""
        state = data.get("State") or {}
        config = data.get("Config") or {}
        labels = config.get("Labels") or {}
        health = state.get("Health") or {}
        checks = health.get("Log") or []
        status = str(state.get("Status", "unknown"))
        number = str(labels.get(LABEL_NUMBER, "0"))
        return cls(
            id=str(data["Id"]),
            name=str(data.get("Name", "")).lstrip("/"),
            service=str(labels.get(LABEL_SERVICE, "")),
            number=int(number) if number.isdigit() else 0,
            state=status,
            health=str(health.get("Status", "none")) if health else "none",
            exit_code=int(state.get("ExitCode", 0)) if status in ("exited", "dead") else None,
            image=str(config.get("Image", "")),
            restart_policy=str(((data.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name", "")),
            tty=bool(config.get("Tty")),
            last_health_output=str(checks[-1].get("Output", "")).strip()[-HEALTH_OUTPUT_CHARS:] if checks else "",
        )

    @property
    def ready(self) -> bool:
        """Running, and healthy when it has a healthcheck."""
        return self.state == "running" and self.health in ("none", "healthy")

    @property
    def gone(self) -> bool:
        """Stopped for good: exited or dead, and the daemon will not restart it."""
        if self.state == "dead":
            return True
        if self.state != "exited":
            return False
        restarts = self.restart_policy in RESTARTING_POLICIES or (
            self.restart_policy == "on-failure" and self.exit_code != 0
        )
        return not restarts

    def describe(self) -> str:
        """``name: state`` with what explains it (exit code, health and its last check)."""
        if self.state in ("exited", "dead"):
            return f"{self.name}: {self.state} (exit code {self.exit_code})"
        if self.state == "running" and self.health != "none":
            last = f", last check: {self.last_health_output}" if self.last_health_output else ""
            return f"{self.name}: {self.health}{last}"
        return f"{self.name}: {self.state}"

    def output(self) -> ContainerOutput:
        """The public view of this container."""
        return ContainerOutput.model_validate(
            {
                "id": self.id,
                "name": self.name,
                "service": self.service,
                "number": self.number,
                "state": self.state,
                "health": self.health,
                "exit-code": self.exit_code,
                "image": self.image,
            }
        )


async def project_containers(engine: Engine, project: str, service: str | None = None) -> list[Container]:
    """The containers of ``project`` (of one ``service`` if given), by service then replica number."""
    labels = [f"{LABEL_PROJECT}={project}", f"{LABEL_ONEOFF}=False"]
    if service is not None:
        labels.append(f"{LABEL_SERVICE}={service}")
    listed = await engine.call("GET", "/containers/json", params={"all": "1", "filters": json.dumps({"label": labels})})
    found: list[Container] = []
    for entry in listed or []:
        data = await engine.inspect("/containers/{}/json", str(entry["Id"]))
        if data is not None:  # removed since it was listed
            found.append(Container.from_inspect(data))
    return sorted(found, key=lambda c: (c.service, c.number, c.name))


async def log_tail(engine: Engine, container: Container, lines: int) -> list[str]:
    """The last ``lines`` lines the container wrote (stdout and stderr), for failure messages."""
    try:
        data = await engine.read(
            path("/containers/{}/logs", container.id), params={"stdout": "1", "stderr": "1", "tail": str(lines)}
        )
    except (EngineError, DockerUnavailable):  # only decoration of another failure: never mask it
        return []
    if not container.tty:  # without a TTY the log is multiplexed like an exec's output
        data = b"".join(payload for stream, payload in FrameReader().feed(data) if stream in (STDOUT, STDERR))
    return data.decode(errors="replace").rstrip("\n").split("\n")[-lines:] if data.strip() else []
