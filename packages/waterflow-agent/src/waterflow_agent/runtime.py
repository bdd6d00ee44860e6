"""The agent process: connect, serve every queue, heartbeat, hot reload, shut down gracefully.

Life cycle:

0. (the command, before this class) take secrets out of the environment, re-executing the process
   if needed, take the working directory off ``sys.path`` and make the process non-dumpable;
   run on a :class:`~waterflow_agent.steploop.StepLoop` (steps' processes are marked, and with
   ``--run-as`` run as the step user);
1. lock the workdir, kill what the steps of the agent's previous life left running and start the
   process sentinel (:mod:`waterflow_agent.stepprocs`); connect to Temporal, retrying with
   backoff for as long as it takes (an agent may boot before Temporal does);
2. build the node registry, the secret provider and the log handler;
3. run one Temporal worker per queue (each group, plus ``agent:<name>``, which also hosts the
   agent's registration workflow), each under a supervisor that restarts it after a fatal error,
   so losing the network never ends the process (the SDK itself retries polls meanwhile);
4. print ``... ready ...`` once polling, heartbeat the registration, watch for node packages;
5. on SIGTERM/SIGINT: withdraw the registration, stop polling, give running steps ``grace`` to
   finish (then they are cancelled), exit 0. A second signal cancels the running steps at once
   (nodes still clean up, e.g. kill their process groups) and the agent exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from waterflow_core.agent_registry import AgentRegistryWorkflow
from waterflow_core.plugins import PluginError, PluginManager
from waterflow_core.providers import LogHandler, Provider, SecretProvider
from waterflow_core.temporal import release_failed_worker, sandboxed_runner

from .config import AgentConfig
from .envsecrets import serve_taken
from .executor import AgentIdentity, StepExecutor
from .facts import host_facts
from .registration import Registration
from .reloader import RegistryHolder, Reloader
from .runas import RunAsError, RunAsPolicy, StepUser, group_name
from .runsecrets import RunSecrets
from .steplog import LogShipper
from .stepprocs import StepProcesses, WorkdirInUse

log = logging.getLogger("waterflow.agent")

_MAX_BACKOFF = 30.0
AGENT_POLLS = 2
"""Long polls per task type and queue (the SDK default is 5): see the worker in ``_serve``."""


class AgentError(Exception):
    """The agent cannot start with this configuration."""


class Agent:
    """One agent process (see the module docstring)."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        secret_options: dict[str, Any] | None = None,
        log_options: dict[str, Any] | None = None,
        taken_env: Mapping[str, str] | None = None,
    ) -> None:
        """``taken_env``: the sensitive variables taken out of the process environment
        (:func:`~waterflow_agent.sensitive_env.take_sensitive_environment`); the ``env`` secret
        provider serves the secrets among them."""
        self.config = config
        self._secret_options = secret_options or {}
        self._log_options = log_options or {}
        self._taken_env = dict(taken_env or {})
        self.step_user = self._step_user(config.run_as)
        """Whom the processes of steps run as (``None``: the agent's own user)."""
        self._stop = asyncio.Event()
        self._workers: dict[str, Worker] = {}
        self._executor: StepExecutor | None = None
        self._shipper: LogShipper | None = None
        self.forced = False
        """Whether running steps were cancelled instead of being let finish."""

    def stop(self, *, force: bool = False) -> None:
        """Begin a graceful shutdown; ``force`` also cancels running steps (safe from a signal handler)."""
        self._stop.set()
        if force:
            self.forced = True
            if self._executor is not None:
                cancelled = self._executor.cancel_running()
                log.warning("cancelled %d running step(s)", cancelled)

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    async def run(self, *, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until :meth:`stop`; returns after a clean shutdown."""
        config = self.config
        try:
            config.workdir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise AgentError(f"cannot create the work directory {config.workdir}: {err.strerror}") from None
        # Configuration errors surface before waiting for Temporal, not after.
        steps_dir = self._steps_dir()
        run_as = self._run_as_policy()
        plugins = PluginManager(strict=False)
        secrets = serve_taken(
            _provider(plugins, SecretProvider, config.secret_provider, self._secret_options), self._taken_env
        )
        processes = StepProcesses(config.workdir.resolve())
        try:
            processes.open()
        except (WorkdirInUse, OSError) as err:
            raise AgentError(str(err)) from err
        try:
            shipper = self._shipper = self._log_shipper(plugins)
            try:
                await self._run(secrets, steps_dir, processes, on_ready, run_as)
            finally:
                if shipper is not None:
                    await shipper.close()
        finally:
            processes.close()

    async def _run(
        self,
        secrets: SecretProvider,
        steps_dir: Path,
        processes: StepProcesses,
        on_ready: Callable[[], None] | None,
        run_as: RunAsPolicy,
    ) -> None:
        config = self.config
        client = await self._connect()
        if client is None:  # stopped while waiting for Temporal
            return
        try:
            holder = await RegistryHolder.load()
        except PluginError as err:  # e.g. two packages provide the same node type and major
            raise AgentError(str(err)) from err
        identity = AgentIdentity(
            name=config.name,
            groups=list(config.groups),
            facts=host_facts(config.facts),
            workdir=steps_dir,
        )
        executor = self._executor = StepExecutor(
            identity,
            holder,
            secrets,
            RunSecrets(config.run_secrets_ttl),
            processes,
            ship_log=self._shipper.submit if self._shipper else None,
            step_user=self.step_user,
            run_as=run_as,
            log_rate=config.step_log_rate,
            log_burst=config.step_log_burst,
        )
        registration = Registration(
            client, identity, holder.current, interval=config.heartbeat_interval
        )
        holder.on_swap(registration.update_nodes)

        serving = [
            asyncio.create_task(self._serve(client, queue, executor), name=f"serve {queue}")
            for queue in config.queues
        ]
        await registration.announce_once()
        background = [
            asyncio.create_task(registration.run(), name="registration"),
            asyncio.create_task(
                Reloader(
                    holder, poll_interval=config.reload_poll_interval.total_seconds(), watch=config.reload_watch
                ).run(),
                name="reload",
            ),
        ]
        if on_ready is not None:
            on_ready()
        log.info(
            "agent %s serving %s with %d node type(s)",
            config.name,
            ", ".join(config.queues),
            len(holder.current),
        )

        await self._stop.wait()
        log.info("shutting down: no new steps; running steps get %s to finish", config.grace)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        # Withdraw first: from now on nothing should be routed to this agent's personal queue.
        await registration.withdraw()
        await asyncio.gather(*(w.shutdown() for w in list(self._workers.values())))
        await asyncio.gather(*serving, return_exceptions=True)
        log.info("agent %s stopped", config.name)

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _step_user(spec: str | None) -> StepUser | None:
        if spec is None:
            return None
        try:
            user = StepUser.resolve(spec)
            if user.uid == os.geteuid():
                return None  # already that user: nothing to drop
            user.check_agent_can_switch()
        except RunAsError as err:
            raise AgentError(str(err)) from err
        return user

    def _run_as_policy(self) -> RunAsPolicy:
        """The users a step's ``run-as:`` may name, each with its own steps directory."""
        try:
            policy = RunAsPolicy.load(self.config.allow_run_as, self.config.workdir)
        except (RunAsError, OSError) as err:
            raise AgentError(str(err)) from err
        if policy.allowed:
            log.info("steps may run as: %s", ", ".join(sorted(policy.allowed)))
        return policy

    def _steps_dir(self) -> Path:
        """Where steps work: the workdir, or with ``--run-as`` its ``steps`` directory owned by the user."""
        if self.step_user is None:
            return self.config.workdir.resolve()
        try:
            steps = self.step_user.prepare_steps_dir(self.config.workdir)
        except (RunAsError, OSError) as err:
            raise AgentError(str(err)) from err
        user = self.step_user
        log.info(
            "steps run as %s (uid %d, gid %s) in %s", user.name, user.uid, group_name(user.gid), steps
        )
        return steps

    async def _connect(self) -> Client | None:
        settings = self.config.temporal
        identity = f"waterflow-agent/{self.config.name}@{socket.gethostname()}:{os.getpid()}"
        delay = 0.5
        while not self._stop.is_set():
            try:
                return await settings.connect(identity=identity)
            except Exception as err:  # noqa: BLE001 - unreachable is retried forever
                log.warning(
                    "cannot reach Temporal at %s (%s); retrying in %.1fs", settings.address, err, delay
                )
            await self._sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)
        return None

    async def _serve(self, client: Client, queue: str, executor: StepExecutor) -> None:
        """Run the worker of ``queue``; recreate it after a fatal error until stopped."""
        delay = 1.0
        personal = queue == self.config.personal_queue
        while not self._stop.is_set():
            worker: Worker | None = None
            try:
                worker = Worker(
                    client,
                    task_queue=queue,
                    activities=[executor.execute],
                    workflows=[AgentRegistryWorkflow] if personal else [],
                    workflow_runner=sandboxed_runner(),
                    max_concurrent_activities=self.config.max_concurrent,
                    # Temporal caps concurrent long polls per namespace (frontend.namespaceCount,
                    # 1200 by default); the SDK's 5 per task type made ~15 per idle agent, so ~80
                    # agents starved everything else (ADR 0045). A poller re-polls as soon as it
                    # gets a task, so 2 only delays bursts on one agent, by a poll round trip.
                    max_concurrent_activity_task_polls=AGENT_POLLS,
                    max_concurrent_workflow_task_polls=AGENT_POLLS,
                    graceful_shutdown_timeout=self.config.grace,
                    # The SDK otherwise batches heartbeats to 80% of the heartbeat timeout, which
                    # would delay a cancellation reaching the step by up to ~24 s; and a step's
                    # output reaches `logs --follow` only with a heartbeat (under 2 s: issue 10).
                    max_heartbeat_throttle_interval=timedelta(seconds=1),
                    # One tiny registration workflow lives here; no need for a large cache.
                    max_cached_workflows=10 if personal else 0,
                )
                self._workers[queue] = worker
                await worker.run()
            except Exception as err:  # noqa: BLE001 - keep the agent alive, try again
                if self._stop.is_set():
                    return
                log.error("worker for %s failed (%s); restarting in %.0fs", queue, err, delay)
                if worker is not None:
                    release_failed_worker(worker)
                await self._sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
            else:
                return

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up early for a shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def _log_shipper(self, plugins: PluginManager) -> LogShipper | None:
        name = self.config.log_handler
        if not name:
            return None
        options = dict(self._log_options)
        if name == "jsonl":
            # The default handler writes relative to the cwd; an agent's home is its workdir.
            options.setdefault("path", self.config.workdir / "logs" / "steps.jsonl")
        return LogShipper(_provider(plugins, LogHandler, name, options))


def _provider(
    plugins: PluginManager, kind: type[Provider], name: str, options: dict[str, Any]
) -> Any:
    classes = plugins.provider_classes(kind)
    cls = classes.get(name)
    if cls is None:
        raise AgentError(
            f"unknown {kind.__name__} {name!r} (installed: {', '.join(sorted(classes)) or 'none'})"
        )
    try:
        return cls(options)
    except Exception as err:
        raise AgentError(f"invalid options for {kind.__name__} {name!r}: {err}") from err


def install_signal_handlers(agent: Agent) -> None:
    """First SIGTERM/SIGINT: graceful stop. Second: cancel the running steps now."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if not agent.stopping:
            log.info("received %s", name)
            agent.stop()
        else:
            log.warning("received %s again: not waiting for running steps", name)
            agent.stop(force=True)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)


async def run_agent(agent: Agent, *, on_ready: Callable[[], None] | None = None) -> None:
    """Run ``agent`` with signal handling until it stops."""
    install_signal_handlers(agent)
    await agent.run(on_ready=on_ready)

