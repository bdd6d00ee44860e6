"""The ``docker/compose-up`` and ``docker/compose-down`` nodes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from waterflow_core.node import Node, NodeContext

from .capture import last_lines
from .compose_cli import Compose, detect
from .compose_config import Service, missing_images, parse_services, selected
from .compose_models import (
    ComposeDownInputs,
    ComposeDownOutputs,
    ComposeInputs,
    ComposeUpInputs,
    ComposeUpOutputs,
)
from .containers import project_containers
from .engine import Engine
from .errors import DockerUnavailable, bad_input, failed
from .process import probe, run_command
from .roots import allowed_roots, resolve_file
from .waiting import wait_ready

# The agent's own configuration (secret provider settings, Temporal credentials) is not compose's.
PRIVATE_ENV_PREFIXES = ("WATERFLOW_", "TEMPORAL_")
LINES_IN_ERROR = 20


@dataclass(frozen=True)
class ComposeRun:
    """Everything a compose command line of this step needs."""

    compose: Compose
    files: list[str]
    project: str
    env: dict[str, str]
    cwd: Path

    def describe(self) -> dict[str, object]:
        """The outputs both nodes share."""
        return {
            "project": self.project,
            "files": self.files,
            "compose": self.compose.name,
            "compose-version": self.compose.version,
        }


class ComposeUpNode(Node):
    """Create and start a compose project's services, then wait until they are up (and healthy)."""

    type = "docker/compose-up"
    version = "1.0.0"
    description = "docker compose up -d, then wait until every container is running and healthy."

    Inputs = ComposeUpInputs  # type: ignore[assignment]
    Outputs = ComposeUpOutputs  # type: ignore[assignment]

    async def run(self, ctx: NodeContext, inputs: ComposeUpInputs) -> ComposeUpOutputs:
        """One attempt: check the files, pull per policy, ``up -d``, wait."""
        try:
            async with Engine.from_environment(ctx.agent) as engine:
                run = await _prepare(ctx, inputs, engine)
                services = await _services(ctx, run)
                targets = selected(services, inputs.services, _profiles(run.env))
                if inputs.pull == "never":
                    await _require_images(engine, [services[name] for name in targets], ctx.agent)
                for argv in run.compose.up(run.files, run.project, inputs.services, inputs.pull):
                    await _compose(ctx, run, argv)
                if inputs.wait:
                    containers = await wait_ready(engine, run.project, targets, inputs.wait_timeout, ctx.log)
                else:
                    containers = [c for c in await project_containers(engine, run.project) if c.service in targets]
        except DockerUnavailable as err:
            raise err.to_application_error() from None
        return ComposeUpOutputs.model_validate(
            {
                **run.describe(),
                "services": {name: [c.output() for c in containers if c.service == name] for name in targets},
                "containers": [c.output() for c in containers],
            }
        )


class ComposeDownNode(Node):
    """Stop and remove a compose project's containers and networks (and volumes if asked)."""

    type = "docker/compose-down"
    version = "1.0.0"
    description = "docker compose down: stop and remove the project's containers and networks."

    Inputs = ComposeDownInputs  # type: ignore[assignment]
    Outputs = ComposeDownOutputs  # type: ignore[assignment]

    async def run(self, ctx: NodeContext, inputs: ComposeDownInputs) -> ComposeDownOutputs:
        """One attempt: check the files, ``down``, report what was removed."""
        try:
            async with Engine.from_environment(ctx.agent) as engine:
                run = await _prepare(ctx, inputs, engine)
                await _services(ctx, run)  # an invalid file is the user's to fix, not worth a retry
                before = await project_containers(engine, run.project)
                argv = run.compose.down(
                    run.files,
                    run.project,
                    volumes=inputs.volumes,
                    remove_orphans=inputs.remove_orphans,
                    timeout=int(inputs.timeout),
                )
                await _compose(ctx, run, argv)
                remaining = {c.id for c in await project_containers(engine, run.project)}
        except DockerUnavailable as err:
            raise err.to_application_error() from None
        removed = [c.name for c in before if c.id not in remaining]
        ctx.log.info("removed %d container(s) of project %s", len(removed), run.project)
        return ComposeDownOutputs.model_validate({**run.describe(), "removed": removed})


async def _prepare(ctx: NodeContext, inputs: ComposeInputs, engine: Engine) -> ComposeRun:
    agent = ctx.agent or "(local)"
    roots = allowed_roots(ctx.workdir)
    files = [resolve_file(raw, ctx.workdir, roots) for raw in inputs.file]
    project = inputs.project or default_project(files[0])
    await engine.ping()
    compose = await detect(probe, os.environ.get("PATH"), agent)
    ctx.log.info(
        "using %s %s (compose %s) for project %s", compose.name, compose.version, "v2" if compose.v2 else "v1", project
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(PRIVATE_ENV_PREFIXES)}
    env.update(ctx.env)
    env.update(inputs.env)
    # Compose must talk to the daemon the node inspects, whatever the step's environment says.
    env.pop("DOCKER_CONTEXT", None)
    env["DOCKER_HOST"] = f"unix://{engine.socket}"
    return ComposeRun(compose, [str(f) for f in files], project, env, files[0].parent)


def default_project(first_file: Path) -> str:
    """Compose's default project name: the first file's directory name, normalised."""
    name = re.sub(r"[^a-z0-9_-]", "", first_file.parent.name.lower()).lstrip("_-")
    if not name:
        raise bad_input(f"cannot derive a project name from directory {str(first_file.parent)!r}; set project")
    return name


def _profiles(env: dict[str, str]) -> list[str]:
    return [p.strip() for p in env.get("COMPOSE_PROFILES", "").split(",") if p.strip()]


async def _services(ctx: NodeContext, run: ComposeRun) -> dict[str, Service]:
    result = await run_command(
        run.compose.config(run.files, run.project), env=run.env, cwd=run.cwd, log=ctx.log, log_stdout=False
    )
    if result.returncode != 0:
        why = last_lines(result.stderr, LINES_IN_ERROR) or last_lines(result.stdout, LINES_IN_ERROR)
        raise bad_input("\n".join([f"{run.compose.name} rejected the compose file(s) {', '.join(run.files)}:", *why]))
    return parse_services(result.stdout)


async def _require_images(engine: Engine, services: list[Service], agent: str) -> None:
    missing = await missing_images(engine, services)
    if missing:
        raise bad_input(f"pull: never, and these images are not on agent {agent or '(local)'}: {', '.join(missing)}")


async def _compose(ctx: NodeContext, run: ComposeRun, argv: list[str]) -> None:
    command = argv[len(run.compose.base(run.files, run.project))]
    result = await run_command(argv, env=run.env, cwd=run.cwd, log=ctx.log)
    if result.returncode != 0:
        why = last_lines(result.stderr, LINES_IN_ERROR) or last_lines(result.stdout, LINES_IN_ERROR)
        raise failed("\n".join([f"{run.compose.name} {command} failed with exit code {result.returncode}:", *why]))
