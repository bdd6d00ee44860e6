"""Inputs and outputs of ``docker/compose-up`` and ``docker/compose-down``."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from .compose_cli import PullPolicy
from .containers import ContainerOutput
from .fields import Env, GracePeriod, Project, Seconds, ServiceName, Text

DEFAULT_WAIT_TIMEOUT = 120.0
DEFAULT_STOP_TIMEOUT = 10.0


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


class ComposeInputs(BaseModel):
    """What both compose nodes take: the files, the project, interpolation variables."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    file: Annotated[list[Text], BeforeValidator(_one_or_many)] = Field(
        min_length=1,
        description="Compose file, or a list of them (later ones override earlier ones, like repeated -f).",
    )
    project: Project | None = Field(
        None, description="Project name; default: the first file's directory name, normalised as compose does."
    )
    env: Env = Field(default_factory=dict, description="Variables for ${VAR} interpolation in the compose file.")


class ComposeUpInputs(ComposeInputs):
    """``with:`` of ``docker/compose-up``."""

    services: Annotated[list[ServiceName], BeforeValidator(_one_or_many)] = Field(
        default_factory=list, description="Services to bring up (with what they depend on); default: all."
    )
    wait: bool = Field(True, description="Wait until every container is running, and healthy if it has a healthcheck.")
    wait_timeout: Seconds = Field(
        DEFAULT_WAIT_TIMEOUT, alias="wait-timeout", gt=0, description="How long `wait` waits before failing the step."
    )
    pull: PullPolicy = Field(
        "missing", description="missing: pull images not on the agent; always: pull first; never: fail if missing."
    )


class ComposeDownInputs(ComposeInputs):
    """``with:`` of ``docker/compose-down``."""

    volumes: bool = Field(False, description="Also remove named volumes and anonymous volumes (`down -v`).")
    remove_orphans: bool = Field(
        False, alias="remove-orphans", description="Also remove containers of services no longer in the file."
    )
    timeout: GracePeriod = Field(
        DEFAULT_STOP_TIMEOUT, ge=0, description="Grace period for containers to stop before they are killed."
    )

    @field_validator("timeout")
    @classmethod
    def _whole_seconds(cls, value: float) -> float:
        return float(math.ceil(value))  # compose takes whole seconds; never shorten the grace period


class ComposeOutputs(BaseModel):
    """What both compose nodes report: the project, its files and the compose used."""

    model_config = ConfigDict(populate_by_name=True)

    project: str = Field(description="The project name used.")
    files: list[str] = Field(description="Real paths of the compose files used.")
    compose: str = Field(description="`docker compose` (v2 plugin) or `docker-compose`.")
    compose_version: str = Field(alias="compose-version", description="Its version, such as 1.29.2 or 2.24.5.")


class ComposeUpOutputs(ComposeOutputs):
    """``steps.<id>.outputs`` of ``docker/compose-up``."""

    services: dict[str, list[ContainerOutput]] = Field(
        description="Each service brought up (dependencies included) and its containers."
    )
    containers: list[ContainerOutput] = Field(description="The same containers as one list, by service and number.")


class ComposeDownOutputs(ComposeOutputs):
    """``steps.<id>.outputs`` of ``docker/compose-down``."""

    removed: list[str] = Field(description="Names of the project's containers that were removed.")
