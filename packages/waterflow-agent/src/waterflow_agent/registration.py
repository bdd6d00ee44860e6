"""Keeping the agent's entry in the live agent registry (:mod:`waterflow_core.agent_registry`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta

from temporalio.client import Client

from waterflow_core.agent_registry import DEFAULT_LEASE, AgentInfo, announce, withdraw
from waterflow_core.registry import NodeRegistry

from .executor import AgentIdentity
from .reloader import node_catalog

log = logging.getLogger(__name__)

# Each beat is moved by up to this fraction of the interval, at random: agents started together
# (a fleet, or every agent reconnecting after a Temporal outage) do not keep beating in lockstep.
JITTER = 0.1


class Registration:
    """Announces the agent every ``interval``, and at once whenever its node catalog changes.

    Beats keep their cadence: the next one is due ``interval`` (± :data:`JITTER`) after the
    previous one *started*, so a slow call to an overloaded Temporal does not stretch the time
    between two ``last_seen`` values, which the registry's liveness window measures.
    """

    def __init__(
        self,
        client: Client,
        identity: AgentIdentity,
        registry: NodeRegistry,
        *,
        interval: timedelta,
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self._client = client
        self._interval = interval
        self._lease = lease
        self._changed = asyncio.Event()
        self.info = AgentInfo(
            name=identity.name,
            groups=list(identity.groups),
            nodes=node_catalog(registry),
            facts=dict(identity.facts),
            instance=uuid.uuid4().hex,
            started_at=datetime.now(UTC),
            heartbeat_interval_seconds=interval.total_seconds(),
        )

    def update_nodes(self, registry: NodeRegistry) -> None:
        """A new registry generation: publish its catalog without waiting for the next beat."""
        self.info = self.info.model_copy(update={"nodes": node_catalog(registry)})
        self._changed.set()

    async def announce_once(self) -> bool:
        """One heartbeat; ``False`` (logged) when Temporal could not be reached."""
        try:
            await announce(self._client, self.info, lease=self._lease)
        except Exception as err:  # noqa: BLE001 - Temporal away: the next beat retries
            log.warning("could not heartbeat the agent registration: %s", err)
            return False
        return True

    async def run(self) -> None:
        """Heartbeat until cancelled (after the first :meth:`announce_once`)."""
        loop = asyncio.get_running_loop()
        interval = self._interval.total_seconds()
        due = loop.time() + self._jittered(interval)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.0, due - loop.time()))
            self._changed.clear()
            started = loop.time()
            await self.announce_once()
            due = started + self._jittered(interval)

    @staticmethod
    def _jittered(interval: float) -> float:
        return interval * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 - spreading load, not a secret

    async def withdraw(self, timeout: float = 10.0) -> None:
        """Remove the entry (graceful shutdown, while the workers still run).

        Failures only log: the entry then goes stale and its lease runs out.
        """
        try:
            done = await asyncio.wait_for(
                withdraw(self._client, self.info.name, self.info.instance), timeout
            )
        except Exception as err:  # noqa: BLE001 - the entry goes stale, then times out
            log.warning("could not withdraw the agent registration: %s", err)
            return
        if not done:
            log.warning("registration %s belongs to another process; left in place", self.info.name)
