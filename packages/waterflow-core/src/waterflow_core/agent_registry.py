"""The live agent registry, kept in Temporal (see docs/adr/0008-agent-registry.md).

Each agent owns one long-running workflow, id ``waterflow-agent:<name>``, type ``WaterflowAgent``,
on its personal task queue ``agent:<name>`` (so the agent itself runs it). The agent
signal-with-starts it on start-up and signals it every ``heartbeat_interval`` with its
:class:`AgentInfo`; the workflow publishes the info and the time it last heard from the agent
in its memo, which visibility returns with every listing. Readers therefore need no worker to
answer: :func:`list_agents` is one visibility query, and an agent that died simply stops
advancing ``last_seen``.

Dead agents also clean up after themselves: the workflow runs with a run timeout (the *lease*)
and continues-as-new well before it, but only while heartbeats keep arriving, so an agent that
never comes back times out within one lease. A graceful stop completes the workflow at once.

This module is workflow code: deterministic, no I/O at import. The client-side helpers at the
bottom only run outside workflows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

__all__ = [
    "AGENT_WORKFLOW_TYPE",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_LEASE",
    "AgentInfo",
    "AgentRegistryWorkflow",
    "NodeInfo",
    "agent_workflow_id",
    "announce",
    "describe_agent",
    "list_agents",
    "personal_queue",
    "withdraw",
]

AGENT_WORKFLOW_TYPE = "WaterflowAgent"
DEFAULT_HEARTBEAT_INTERVAL = timedelta(seconds=10)
# How long a registration outlives its last heartbeat before Temporal closes it (run timeout).
DEFAULT_LEASE = timedelta(hours=1)
# An agent counts as live while its last heartbeat is younger than this many intervals, plus
# one registration workflow task timeout: `last_seen` is the time the agent's own worker ran the
# heartbeat's workflow task, and when a busy worker or Temporal lets that task time out, its retry
# publishes `last_seen` that much later although the agent beat in time (issue 12, ADR 0045).
MISSED_HEARTBEATS = 3
REGISTRATION_TASK_TIMEOUT = timedelta(seconds=10)
# Bound each run's history well below Temporal's limits (a heartbeat costs about 5 events).
_MAX_HISTORY_EVENTS = 2_000

_MEMO_INFO = "agent"
_MEMO_LAST_SEEN = "last_seen"


def agent_workflow_id(name: str) -> str:
    """Workflow id of an agent's registration."""
    return f"waterflow-agent:{name}"


def personal_queue(name: str) -> str:
    """The task queue only the named agent polls (per-server fan-out, host-sticky steps)."""
    return f"agent:{name}"


class NodeInfo(BaseModel):
    """One entry of an agent's node catalog."""

    type: str
    version: str
    description: str = ""
    distribution: str | None = None
    distribution_version: str | None = None


class AgentInfo(BaseModel):
    """What an agent says about itself, plus when the registry last heard from it."""

    name: str
    groups: list[str] = Field(default_factory=list)
    nodes: list[NodeInfo] = Field(default_factory=list)
    facts: dict[str, Any] = Field(default_factory=dict)
    # Distinguishes two processes that claim the same name (a restart, or a misconfiguration):
    # only the instance that registered last may withdraw the registration.
    instance: str = ""
    started_at: datetime | None = None
    heartbeat_interval_seconds: float = DEFAULT_HEARTBEAT_INTERVAL.total_seconds()
    last_seen: datetime | None = None

    def liveness_window(self) -> timedelta:
        """How long after its ``last_seen`` the agent still counts as live (and a dead one is listed)."""
        return timedelta(seconds=self.heartbeat_interval_seconds * MISSED_HEARTBEATS) + REGISTRATION_TASK_TIMEOUT

    def is_alive(self, now: datetime | None = None) -> bool:
        """Whether the agent heartbeated within :meth:`liveness_window`."""
        if self.last_seen is None:
            return False
        now = now or datetime.now(UTC)
        return now - self.last_seen <= self.liveness_window()

    def same_registration(self, other: AgentInfo | None) -> bool:
        """Equal except for ``last_seen`` (decides whether the memo's info needs rewriting)."""
        if other is None:
            return False
        return self.model_dump(exclude={"last_seen"}) == other.model_dump(exclude={"last_seen"})


@workflow.defn(name=AGENT_WORKFLOW_TYPE)
class AgentRegistryWorkflow:
    """Holds one agent's registration; see the module docstring for the protocol."""

    def __init__(self) -> None:
        self._info: AgentInfo | None = None
        self._published: AgentInfo | None = None
        self._heard = False
        self._stopping = False

    @workflow.run
    async def run(self, previous: AgentInfo | None = None) -> None:
        """Publish every heartbeat until the agent withdraws or the lease runs out."""
        self._info = self._info or previous
        # The previous run handed its memo over with continue-as-new; nothing to republish.
        self._published = previous
        run_started = workflow.now()
        lease = workflow.info().run_timeout or DEFAULT_LEASE
        while True:
            await workflow.wait_condition(lambda: self._heard or self._stopping)
            if self._stopping:
                return
            self._heard = False
            info = self._publish()
            too_long = workflow.info().get_current_history_length() > _MAX_HISTORY_EVENTS
            # Renew the lease only in reply to a heartbeat: a silent agent must time out.
            if too_long or workflow.now() - run_started > lease / 2:
                await workflow.wait_condition(workflow.all_handlers_finished)
                # The memo travels explicitly: the new run must be listable from its first moment.
                workflow.continue_as_new(info, memo=self._memo(info))

    @workflow.signal
    def heartbeat(self, info: AgentInfo) -> None:
        """The agent is alive; ``info`` is its current registration."""
        self._info = info
        self._heard = True

    @workflow.update
    def withdraw(self, instance: str) -> bool:
        """The agent stops gracefully; refused (``False``) unless sent by the instance registered last.

        An update, not a signal: the agent learns the outcome while its worker still runs, and
        the registration completes in that same workflow task.
        """
        if self._info is None or self._info.instance == instance:
            self._stopping = True
        return self._stopping

    @workflow.query
    def info(self) -> AgentInfo | None:
        """The registration as last heard (answers only while the agent's worker runs)."""
        return self._info

    def _publish(self) -> AgentInfo:
        info = self._info
        assert info is not None  # set by the heartbeat that woke us
        info.last_seen = workflow.now()
        updates = self._memo(info)
        if info.same_registration(self._published):
            del updates[_MEMO_INFO]  # unchanged: keep the history small, write last_seen only
        else:
            self._published = info.model_copy()
        workflow.upsert_memo(updates)
        return info

    @staticmethod
    def _memo(info: AgentInfo) -> dict[str, Any]:
        last_seen = info.last_seen.isoformat() if info.last_seen else None
        return {
            _MEMO_INFO: info.model_dump(mode="json", exclude={"last_seen"}),
            _MEMO_LAST_SEEN: last_seen,
        }


# -- client side ------------------------------------------------------------------------------


async def announce(
    client: Client,
    info: AgentInfo,
    *,
    lease: timedelta = DEFAULT_LEASE,
) -> None:
    """Register or heartbeat: signal-with-start the agent's registration workflow."""
    await client.start_workflow(
        AgentRegistryWorkflow.run,
        None,
        id=agent_workflow_id(info.name),
        task_queue=personal_queue(info.name),
        run_timeout=lease,
        task_timeout=REGISTRATION_TASK_TIMEOUT,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        start_signal="heartbeat",
        start_signal_args=[info],
    )


async def withdraw(client: Client, name: str, instance: str) -> bool:
    """Deregister on graceful shutdown; ``False`` if another instance holds the registration.

    Must be called while the agent's worker still runs (it executes the update). Already gone
    counts as done.
    """
    handle = client.get_workflow_handle(agent_workflow_id(name))
    try:
        return await handle.execute_update(AgentRegistryWorkflow.withdraw, instance)
    except RPCError as err:
        # NOT_FOUND: already closed or timed out. Anything else (Temporal unreachable while we
        # shut down) is left to the lease: the registration goes stale and then times out.
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return True


def _agent_from_memo(memo: dict[str, Any]) -> AgentInfo | None:
    raw = memo.get(_MEMO_INFO)
    if not isinstance(raw, dict):
        return None
    info = AgentInfo.model_validate(raw)
    last_seen = memo.get(_MEMO_LAST_SEEN)
    if isinstance(last_seen, str):
        info.last_seen = datetime.fromisoformat(last_seen)
    return info


async def list_agents(client: Client, *, include_stale: bool = False) -> list[AgentInfo]:
    """Every registered agent, sorted by name; only live ones unless ``include_stale``.

    One visibility query, answered from memos: no agent needs to be reachable.
    """
    query = f"WorkflowType = '{AGENT_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
    now = datetime.now(UTC)
    agents: dict[str, AgentInfo] = {}
    async for execution in client.list_workflows(query):
        info = _agent_from_memo(dict(await execution.memo()))
        if info is None or (not include_stale and not info.is_alive(now)):
            continue
        agents[info.name] = info
    return [agents[name] for name in sorted(agents)]


async def describe_agent(client: Client, name: str) -> AgentInfo | None:
    """One agent's registration from its memo, or ``None`` if it is not registered."""
    handle = client.get_workflow_handle(agent_workflow_id(name))
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    return _agent_from_memo(dict(await description.memo()))
