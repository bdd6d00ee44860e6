"""The ``docker/exec`` node: run a command (an argv list, never shell text) in a running container."""

from __future__ import annotations

import shlex
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from temporalio.exceptions import ApplicationError

from waterflow_core.node import Node, NodeContext

from .capture import StreamCapture, last_lines
from .containers import Container, project_containers
from .engine import STDERR, Engine, EngineError, FrameReader, path
from .errors import DockerUnavailable, bad_input, failed
from .fields import ContainerName, Env, Project, ServiceName, Text, User
from .stopping import stop_exec, wait_exec

DEFAULT_CAP = 64 * 1024
LINES_IN_ERROR = 20
EXIT_WAIT = 10.0


def _argv(value: object) -> object:
    if isinstance(value, str):
        raise ValueError(
            "must be a list of arguments such as [nginx, -s, reload], not a string: it never goes through a "
            "shell; for shell syntax write [sh, -c, '...']"
        )
    return value


class ExecInputs(BaseModel):
    """``with:`` of ``docker/exec``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    command: Annotated[list[Text], BeforeValidator(_argv)] = Field(
        min_length=1, description="The program and its arguments, each element one argument, as is."
    )
    container: ContainerName | None = Field(None, description="Container name or id.")
    project: Project | None = Field(None, description="Compose project of `service` (instead of `container`).")
    service: ServiceName | None = Field(None, description="Compose service whose container runs the command.")
    index: int | None = Field(None, ge=1, description="Replica number of `service` (default 1).")
    user: User | None = Field(None, description="`user`, `user:group`, `uid` or `uid:gid` (default: the image's).")
    workdir: Text | None = Field(None, description="Absolute working directory in the container.")
    env: Env = Field(default_factory=dict, description="Extra environment variables for the command.")
    output_cap: int = Field(
        DEFAULT_CAP,
        alias="output-cap",
        ge=0,
        description="Bytes of stdout and of stderr kept in the result (the tail).",
    )

    @field_validator("workdir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"must be an absolute path in the container, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> ExecInputs:
        compose = self.project is not None or self.service is not None
        if self.container is not None and compose:
            raise ValueError("give either container, or project and service, not both")
        if self.container is None and (self.project is None or self.service is None):
            raise ValueError("give container, or both project and service")
        if self.index is not None and not compose:
            raise ValueError("index selects a replica of a compose service; it needs project and service")
        return self


class ExecOutputs(BaseModel):
    """``steps.<id>.outputs`` of ``docker/exec``."""

    model_config = ConfigDict(populate_by_name=True)

    exit_code: int = Field(alias="exit-code", description="Exit status of the command.")
    stdout: str = Field("", description="Last output-cap bytes of standard output.")
    stderr: str = Field("", description="Last output-cap bytes of standard error.")
    truncated: bool = Field(False, description="True when stdout or stderr was longer than output-cap.")
    container: str = Field(description="Name of the container the command ran in.")
    container_id: str = Field(alias="container-id", description="Full id of that container.")


class ExecNode(Node):
    """Run a command in a running container (by name or id, or by compose project and service)."""

    type = "docker/exec"
    version = "1.0.0"
    description = "Run a command (argv list) in a running container; stopped for real on cancellation."

    # Module-level models (importable for tests and docs) rather than nested classes.
    Inputs = ExecInputs  # type: ignore[assignment]
    Outputs = ExecOutputs  # type: ignore[assignment]

    async def run(self, ctx: NodeContext, inputs: ExecInputs) -> ExecOutputs:
        """One attempt: find the container, create the exec, stream its output, check its exit code."""
        try:
            async with Engine.from_environment(ctx.agent) as engine:
                target = await _target(engine, inputs, ctx.agent or "(local)")
                return await _execute(ctx, engine, target, inputs)
        except DockerUnavailable as err:
            raise err.to_application_error() from None


async def _target(engine: Engine, inputs: ExecInputs, agent: str) -> Container:
    if inputs.container is not None:
        data = await engine.inspect("/containers/{}/json", inputs.container)
        if data is None:
            raise bad_input(f"no container {inputs.container!r} on agent {agent}", container=inputs.container)
        target = Container.from_inspect(data)
    else:
        assert inputs.project is not None and inputs.service is not None
        target = await _replica(engine, inputs.project, inputs.service, inputs.index or 1, agent)
    if target.state != "running":
        # Starting, restarting or paused containers may be running by the next attempt.
        raise failed(f"container {target.name} is {target.state}, not running")
    return target


async def _replica(engine: Engine, project: str, service: str, index: int, agent: str) -> Container:
    replicas = await project_containers(engine, project, service)
    if not replicas:
        services = sorted({c.service for c in await project_containers(engine, project)})
        if not services:
            raise bad_input(f"compose project {project!r} has no containers on agent {agent} (is it up?)")
        raise bad_input(
            f"compose project {project!r} has no service {service!r} on agent {agent}; its services: "
            + ", ".join(services)
        )
    for container in replicas:
        if container.number == index:
            return container
    numbers = ", ".join(str(c.number) for c in replicas)
    raise bad_input(f"service {service!r} of project {project!r} has no replica {index}; replicas: {numbers}")


async def _execute(ctx: NodeContext, engine: Engine, target: Container, inputs: ExecInputs) -> ExecOutputs:
    env = {**ctx.env, **inputs.env}
    try:
        created = await engine.call(
            "POST",
            path("/containers/{}/exec", target.id),
            body={
                "Cmd": inputs.command,
                "Env": [f"{key}={value}" for key, value in env.items()],
                "User": inputs.user or "",
                "WorkingDir": inputs.workdir or "",
                "AttachStdin": False,
                "AttachStdout": True,
                "AttachStderr": True,
                "Tty": False,
            },
        )
    except EngineError as err:  # the container stopped or was removed since it was found
        raise failed(f"cannot exec in container {target.name}: {err.message}") from None
    exec_id = str(created["Id"])
    ctx.log.info("exec in %s (%s): %s", target.name, target.id[:12], shlex.join(inputs.command))
    out = StreamCapture("stdout", inputs.output_cap, ctx.log)
    errors = StreamCapture("stderr", inputs.output_cap, ctx.log)
    frames = FrameReader()
    try:
        async with engine.stream("POST", path("/exec/{}/start", exec_id), body={"Detach": False, "Tty": False}) as r:
            async for chunk in r.aiter_raw():
                for stream, payload in frames.feed(chunk):
                    (errors if stream == STDERR else out).feed(payload)
    except BaseException as error:
        # Cancelled, timed out, or the connection broke: the process would outlive the step.
        await stop_exec(engine, exec_id, target.id, ctx.log)
        if isinstance(error, EngineError):  # the daemon refused to start it (container stopped meanwhile)
            raise failed(f"cannot exec in container {target.name}: {error.message}") from None
        raise
    finally:
        out.close()
        errors.close()
    state = await wait_exec(engine, exec_id, started=False, timeout=EXIT_WAIT)
    if state.get("ExitCode") is None:
        raise failed(f"the command in container {target.name} ended without an exit code")
    values: dict[str, Any] = {
        "exit-code": int(state["ExitCode"]),
        "stdout": out.text(),
        "stderr": errors.text(),
        "truncated": out.truncated or errors.truncated,
        "container": target.name,
        "container-id": target.id,
    }
    if values["exit-code"] != 0:
        raise _exit_failure(target, values)
    return ExecOutputs.model_validate(values)


def _exit_failure(target: Container, values: dict[str, Any]) -> ApplicationError:
    # Docker reports a command it cannot start (not found, bad user or workdir) on stdout.
    tail = last_lines(values["stderr"], LINES_IN_ERROR) or last_lines(values["stdout"], LINES_IN_ERROR)
    head = f"command exited with code {values['exit-code']} in container {target.name}"
    return failed("\n".join([head, *tail]), values)
