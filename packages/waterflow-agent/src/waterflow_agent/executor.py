"""The one dynamic activity: run whichever node a step ``uses``.

The activity type is the node type as written in ``uses`` (``exec/shell``, ``exec/shell@1``), so
the agent registers a single dynamic activity and looks the node up in the current registry
generation at the start of each execution; installing a node package never needs a new worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from waterflow_core.dsl.pydantic_errors import describe
from waterflow_core.errors import ErrorCode, format_path
from waterflow_core.interpreter.contexts import attempt_errors
from waterflow_core.interpreter.failures import STEP_CANCELLED
from waterflow_core.node import Node, NodeContext
from waterflow_core.procs import marking, new_token
from waterflow_core.providers import SecretProvider
from waterflow_core.registry import UnknownNodeError
from waterflow_core.steptask import StepResult, StepTask

from .masking import MIN_SECRET, SecretMasker, SecretSet
from .reloader import RegistryHolder
from .rendering import RenderError, StepTemplates
from .runas import AllowedUser, RunAsPolicy, StepUser, running_as
from .runsecrets import RunSecrets
from .steplog import DEFAULT_BURST, DEFAULT_RATE, LogBudget, StepLog
from .stepprocs import StepProcesses

# Heartbeat at least this often; the SDK batches heartbeats anyway (at most one per 80 % of the
# heartbeat timeout), so a short period costs nothing and delivers cancellation promptly.
MAX_HEARTBEAT_PERIOD = 5.0
# Temporal refuses payloads over 2 MB; an oversized failure cannot even be reported (the step then
# hangs until its heartbeat timeout and reads "agent stopped responding"). Messages are cut (after
# masking, so no partial secret survives) and oversized node details are dropped.
MAX_MESSAGE_CHARS = 16 * 1024
MAX_DETAILS_BYTES = 512 * 1024
MAX_RESULT_BYTES = 1024 * 1024
IN_PROCESS_NODES = frozenset({"http/request", "file/transfer"})
"""Built-in nodes that do their work inside the agent, starting no process: ``run-as:`` on them
would change nothing, so it is refused rather than silently ignored (ADR 0038)."""


@dataclass(frozen=True)
class AgentIdentity:
    """Who runs the steps: published to nodes as ``ctx.agent``/``ctx.facts`` and ``server.*``."""

    name: str
    groups: list[str]
    facts: dict[str, Any]
    workdir: Path

    def server_context(self) -> dict[str, Any]:
        """The ``server`` expression context."""
        return {"name": self.name, "groups": list(self.groups), "facts": dict(self.facts)}


class StepExecutor:
    """Holds what every step execution needs; :meth:`execute` is the dynamic activity."""

    def __init__(
        self,
        identity: AgentIdentity,
        registry: RegistryHolder,
        secrets: SecretProvider,
        run_secrets: RunSecrets,
        processes: StepProcesses,
        *,
        ship_log: Callable[[dict[str, Any]], None] | None = None,
        step_user: StepUser | None = None,
        run_as: RunAsPolicy | None = None,
        log_rate: int = DEFAULT_RATE,
        log_burst: int = DEFAULT_BURST,
    ) -> None:
        """``processes``: where steps' processes are tracked; ``step_user``: who they run as
        (``ctx.step_user``); ``run_as``: the users a step's ``run-as:`` may name;
        ``log_rate``/``log_burst``: each step's log budget (bytes)."""
        self.identity = identity
        self.registry = registry
        self.secrets = secrets
        self.run_secrets = run_secrets
        self.ship_log = ship_log
        self.processes = processes
        self.step_user = step_user
        self.run_as = run_as or RunAsPolicy()
        self.log_rate = log_rate
        self.log_burst = log_burst
        self._running: set[asyncio.Task[Any]] = set()

    def cancel_running(self) -> int:
        """Cancel every step now (forced shutdown); nodes still run their cleanup. Returns how many."""
        for task in self._running:
            task.cancel()
        return len(self._running)

    @activity.defn(dynamic=True)
    async def execute(self, args: Sequence[RawValue]) -> StepResult:
        """Decode the :class:`StepTask`, run its node once, return a masked :class:`StepResult`."""
        current = asyncio.current_task()
        assert current is not None
        self._running.add(current)
        try:
            result = await self._execute(args)
        except ApplicationError as err:
            if not err.non_retryable:
                # The next attempt, on whichever agent of the group takes it, reads this from
                # ``activity.info().heartbeat_details``: the SDK sends the newest heartbeat
                # before it reports the failure, so this one is never lost to throttling.
                activity.heartbeat({"attempt_errors": _with_this_error(err.message)})
            raise
        finally:
            self._running.discard(current)
        return result.model_copy(update={"attempt_errors": earlier_errors()})

    async def _execute(self, args: Sequence[RawValue]) -> StepResult:
        info = activity.info()
        task = self._decode_task(args, info.activity_type)
        # Taken once: a hot reload during this execution does not change the class it runs.
        node_cls = self._lookup(task, info.activity_type)
        run_as = self._run_as_user(task, node_cls)

        templates = StepTemplates(task.with_, task.env)
        secrets, missing = await self._resolve_secrets(task, templates)
        # Every secret this run resolved on this agent, this step's included (masked even if the
        # run's set is full).
        run_secrets = self.run_secrets.for_run(task.workflow_id)
        run_set_full = not run_secrets.add(secrets.values())
        masker = SecretMasker(run_secrets, SecretSet(secrets.values()))

        # ``server.vars`` (the provider's per-server vars) is the one part of ``server`` the task
        # carries; the agent's own name, groups and facts always come from the agent.
        server = {**_task_server_vars(task.contexts), **self.identity.server_context()}
        contexts = {**task.contexts, "server": server, "secrets": secrets}
        try:
            rendered = templates.render(node_cls, contexts, status=task.status)
        except RenderError as err:
            raise self._bad_input(task, masker.text(str(err))) from None
        inputs = self._validate_inputs(task, node_cls, rendered.inputs, masker)

        step_log = StepLog(
            task.step_path,
            masker,
            ship=self.ship_log,
            fields={
                "workflow_id": task.workflow_id,
                "run_id": info.workflow_run_id,
                "job": task.job,
                "step": task.step,
                "instance": task.instance,
                "step_path": task.step_path,
                "node": info.activity_type,
                "agent": self.identity.name,
                "attempt": info.attempt,
            },
            budget=LogBudget(self.log_rate, self.log_burst),
        )

        for name in missing:
            # As in GitHub Actions an unknown secret reads as empty; say so, it is usually a typo.
            step_log.logger.warning("secret %s is not defined on agent %s", name, self.identity.name)
        for name, value in secrets.items():
            if 0 < len(value) < MIN_SECRET:
                step_log.logger.warning(
                    "secret %s is shorter than %d characters: it is not masked", name, MIN_SECRET
                )
        if run_set_full:
            step_log.logger.warning(
                "this run resolved more than %d secret values on agent %s: the newest are masked "
                "in the steps that resolved them only",
                self.run_secrets.max_values,
                self.identity.name,
            )

        def beat(*details: Any) -> None:
            payload: dict[str, Any] = {**step_log.heartbeat_details(), "attempt_errors": earlier_errors()}
            if details:
                payload["node"] = masker.value(list(details))
            activity.heartbeat(payload)

        ctx = NodeContext(
            log=step_log.logger,
            workdir=self.identity.workdir if run_as is None else run_as.workdir,
            env={**rendered.env, **rendered.shell_env},
            secrets=secrets,
            facts=self.identity.facts,
            agent=self.identity.name,
            step_path=task.step_path,
            attempt=info.attempt,
            heartbeat=beat,
            step_user=self.step_user if run_as is None else run_as.user,
        )
        heartbeats = asyncio.create_task(
            _heartbeat_forever(beat, _heartbeat_period(info), at_once=bool(info.heartbeat_details))
        )
        try:
            with running_as(None if run_as is None else run_as.user):
                outputs = _dump_outputs(await self._run_node(node_cls(), ctx, inputs, step_log))
        except asyncio.CancelledError:
            if not _cancel_requested():
                raise  # the agent is stopping: the step is not over, another attempt runs it
            # Temporal drops what a cancelled activity reports; a failure of this type keeps
            # the step's last lines and still reads "cancelled" (see interpreter.failures).
            step_log.logger.warning("step cancelled: its processes were stopped")
            raise self._error(
                f"{task.step_path}: cancelled", STEP_CANCELLED, tail=step_log.tail, non_retryable=True
            ) from None
        except ApplicationError as err:
            # The node's own error: its type and retryability are kept.
            raise self._error(
                masker.text(_located(task, err.message)),
                err.type or ErrorCode.STEP_FAILED,
                tail=step_log.tail,
                non_retryable=err.non_retryable,
                next_retry_delay=err.next_retry_delay,
                extra=[masker.value(d) for d in err.details],
            ) from None
        except Exception as err:  # noqa: BLE001 - any node failure becomes a step failure
            step_log.logger.error("step failed: %s: %s", type(err).__name__, err)
            raise self._error(
                masker.text(f"{task.step_path}: {type(err).__name__}: {err}"),
                ErrorCode.STEP_FAILED,
                tail=step_log.tail,
            ) from None
        finally:
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats
        result = StepResult(
            outputs=masker.value(outputs),
            agent=self.identity.name,
            attempt=info.attempt,
            log_tail=step_log.tail,
        )
        size = len(result.model_dump_json())
        if size > MAX_RESULT_BYTES:
            # Temporal refuses payloads over 2 MB and would retry the completion until the
            # heartbeat timeout, reporting a dead agent; say what really happened instead.
            raise self._error(
                f"{task.step_path}: outputs are {size} bytes, more than the {MAX_RESULT_BYTES}-byte "
                "limit of a step result; write large data to a file and output its path",
                ErrorCode.STEP_FAILED,
                tail=step_log.tail,
                non_retryable=True,
            )
        return result

    async def _run_node(self, node: Node, ctx: NodeContext, inputs: BaseModel, step_log: StepLog) -> Any:
        """``node.run``, its processes marked as this step's (see :mod:`waterflow_agent.stepprocs`)."""
        token = new_token()
        self.processes.begin(token)
        try:
            with marking(token):
                return await node.run(ctx, inputs)
        except asyncio.CancelledError:
            # The node has cleaned up what it knows of; the step's other processes go too.
            await self.processes.stop(token)
            raise
        finally:
            self.processes.end(token)
            step_log.close()

    # -- the steps of an execution, each failing with the right error type ------------------

    def _decode_task(self, args: Sequence[RawValue], uses: str) -> StepTask:
        if len(args) != 1:
            raise self._error(
                f"{uses}: expected one StepTask argument, got {len(args)}",
                ErrorCode.BAD_INPUT,
                non_retryable=True,
            )
        try:
            return activity.payload_converter().from_payload(args[0].payload, StepTask)
        except Exception as err:  # noqa: BLE001 - a malformed task can never succeed
            raise self._error(
                f"{uses}: malformed step task: {err}", ErrorCode.BAD_INPUT, non_retryable=True
            ) from None

    def _lookup(self, task: StepTask, uses: str) -> type[Node]:
        try:
            node_cls = self.registry.current.get(uses)
        except UnknownNodeError as err:
            raise self._error(
                f"{task.step_path}: {err} on agent {self.identity.name}",
                err.code,
                non_retryable=True,
            ) from None
        if node_cls.workflow_side:
            raise self._error(
                f"{task.step_path}: {uses} runs inside the workflow, not on agents",
                ErrorCode.UNKNOWN_NODE,
                non_retryable=True,
            )
        return node_cls

    def _run_as_user(self, task: StepTask, node_cls: type[Node]) -> AllowedUser | None:
        """The allowed user of the step's ``run-as:`` (None: the agent's default user)."""
        wanted = task.run_as
        if wanted is None or (self.step_user is not None and wanted == self.step_user.name):
            return None
        if node_cls.type in IN_PROCESS_NODES:
            raise self._error(
                f"{task.step_path}: run-as: {wanted} does not apply to {node_cls.type}: it works inside the "
                "agent and starts no process; remove run-as (or do the work with exec/*)",
                ErrorCode.BAD_INPUT,
                non_retryable=True,
            )
        allowed = self.run_as.get(wanted)
        if allowed is None:
            raise self._error(
                f"{task.step_path}: run-as: agent {self.identity.name} does not allow running steps as "
                f"user {wanted!r} (start it with --allow-run-as {wanted})",
                ErrorCode.BAD_INPUT,
                non_retryable=True,
            )
        return allowed

    async def _resolve_secrets(
        self, task: StepTask, templates: StepTemplates
    ) -> tuple[dict[str, str], list[str]]:
        """The secrets the templates reference: ``(found values, names the provider lacks)``."""
        try:
            names = templates.secret_names()
        except RenderError as err:
            raise self._bad_input(task, str(err)) from None
        if not names:
            return {}, []
        try:
            found = await self.secrets.get_many(names)
        except Exception as err:  # noqa: BLE001 - a provider outage is worth a retry
            raise self._error(
                f"{task.step_path}: cannot resolve secrets {', '.join(names)}: "
                f"{type(err).__name__}: {err}",
                ErrorCode.STEP_FAILED,
            ) from None
        return found, [name for name in names if name not in found]

    def _validate_inputs(
        self, task: StepTask, node_cls: type[Node], data: dict[str, Any], masker: SecretMasker
    ) -> BaseModel:
        try:
            return node_cls.Inputs.model_validate(data)
        except ValidationError as err:
            # Described without the input: pydantic's own text repeats the value, which may be a
            # rendered secret.
            problems = [
                f"{format_path(('with', *error['loc']))}: {describe(error)}"
                for error in err.errors(include_url=False, include_input=False)
            ]
            raise self._bad_input(task, masker.text("; ".join(problems))) from None

    def _bad_input(self, task: StepTask, detail: str) -> ApplicationError:
        return self._error(
            f"{task.step_path}: invalid input for {task.node}: {detail}",
            ErrorCode.BAD_INPUT,
            non_retryable=True,
        )

    def _error(
        self,
        message: str,
        error_type: str,
        *,
        tail: Sequence[str] = (),
        non_retryable: bool = False,
        next_retry_delay: timedelta | None = None,
        extra: Sequence[Any] = (),
    ) -> ApplicationError:
        """A step failure; its first detail tells the interpreter who failed, when, and the log."""
        details = {
            "agent": self.identity.name,
            "attempt": activity.info().attempt,
            "log_tail": list(tail),
            "attempt_errors": earlier_errors(),
        }
        if len(message) > MAX_MESSAGE_CHARS:
            message = f"{message[:MAX_MESSAGE_CHARS]}… ({len(message)} chars)"
        if extra and len(json.dumps(list(extra), default=str)) > MAX_DETAILS_BYTES:
            extra = [f"details omitted: larger than {MAX_DETAILS_BYTES} bytes"]
        return ApplicationError(
            message,
            details,
            *extra,
            type=error_type,
            non_retryable=non_retryable,
            next_retry_delay=next_retry_delay,
        )


def earlier_errors() -> list[str]:
    """The errors of this step's earlier attempts, oldest first, bounded as progress keeps them.

    The previous attempt's last heartbeat carries them (its own error last), whichever agent
    ran it; a previous attempt whose agent died left only the errors before its own.
    """
    details = activity.info().heartbeat_details
    last = details[-1] if details else None
    found = last.get("attempt_errors") if isinstance(last, dict) else None
    return attempt_errors(str(e) for e in found) if isinstance(found, list) else []


def _with_this_error(message: str) -> list[str]:
    """The earlier errors and this attempt's (without the step path every message starts with)."""
    path = activity.info().activity_id.partition("@")[0]
    return attempt_errors([*earlier_errors(), message.removeprefix(f"{path}: ")])


def _cancel_requested() -> bool:
    """Whether the workflow cancelled this step (not the agent stopping, nor a timeout)."""
    details = activity.cancellation_details()
    return details is not None and details.cancel_requested


def _located(task: StepTask, message: str) -> str:
    """``message`` prefixed with the step path (once)."""
    prefix = f"{task.step_path}: "
    return message if message.startswith(prefix) else prefix + message


def _dump_outputs(outputs: Any) -> dict[str, Any]:
    if isinstance(outputs, BaseModel):
        return outputs.model_dump(mode="json", by_alias=True)
    if isinstance(outputs, Mapping):
        return dict(outputs)
    if outputs is None:
        return {}
    raise TypeError(f"node returned {type(outputs).__name__}, expected its Outputs model")


def _heartbeat_period(info: activity.Info) -> float:
    if info.heartbeat_timeout:
        return min(MAX_HEARTBEAT_PERIOD, info.heartbeat_timeout.total_seconds() / 3)
    return MAX_HEARTBEAT_PERIOD


async def _heartbeat_forever(beat: Callable[[], None], period: float, *, at_once: bool) -> None:
    """Beat every ``period`` seconds; the first beat comes at once only if ``at_once``.

    Heartbeating is what lets Temporal tell the agent a step was cancelled: the SDK learns it
    from the heartbeat response and cancels the activity task, i.e. the node's current await.
    A first attempt waits one period before its first beat: a beat at the start tells Temporal
    nothing (the step's start is already recorded), yet costs it a history write in the middle
    of every short step (ADR 0043); a cancellation reaches the step no later than before, as
    the next beat after a start-time one came a period later anyway. A retry beats at once, so
    the previous attempt's lines stop showing in the live view as soon as this attempt starts.
    Output beats in between (nodes call ``ctx.heartbeat`` as lines come).
    """
    if not at_once:
        await asyncio.sleep(period)
    while True:
        beat()
        await asyncio.sleep(period)


def _task_server_vars(contexts: Mapping[str, Any]) -> dict[str, Any]:
    """``{"vars": ...}`` when the workflow sent the instance's ``server.vars``, else nothing."""
    server = contexts.get("server")
    variables = server.get("vars") if isinstance(server, dict) else None
    return {"vars": variables} if isinstance(variables, dict) else {}
