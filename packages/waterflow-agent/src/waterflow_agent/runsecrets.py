"""The secrets each run resolved on this agent, so every step of the run masks all of them.

A step that never references a secret can still print it: an earlier step of the same run wrote
it to a file, and this one ``cat``s it. So masking is per run, not per step: each step's masker
reads its run's :class:`~waterflow_agent.masking.SecretSet`, which grows as steps resolve
secrets, including steps running at the same time.

The agent cannot see a run end, so a run's set expires ``ttl`` after the run's last step started
on this agent; at most ``max_runs`` sets are kept (the least recently used go first), and each
holds at most ``max_values`` values.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta

from .masking import SecretSet

MAX_RUNS = 1000
MAX_VALUES = 1000


class RunSecrets:
    """Per-run secret sets, bounded in number and age (not thread-safe: the event loop uses it)."""

    def __init__(
        self,
        ttl: timedelta,
        *,
        max_runs: int = MAX_RUNS,
        max_values: int = MAX_VALUES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl.total_seconds()
        self.max_runs = max_runs
        self.max_values = max_values
        self._clock = clock
        self._runs: OrderedDict[str, tuple[float, SecretSet]] = OrderedDict()

    def for_run(self, run: str) -> SecretSet:
        """The set of ``run`` (a workflow id), created if needed; counts as a use of it."""
        now = self._clock()
        self._expire(now)
        _, secrets = self._runs.pop(run, (now, None))
        if secrets is None:
            secrets = SecretSet(limit=self.max_values)
        self._runs[run] = (now, secrets)
        while len(self._runs) > self.max_runs:
            self._runs.popitem(last=False)
        return secrets

    def __contains__(self, run: str) -> bool:
        self._expire(self._clock())
        return run in self._runs

    def __len__(self) -> int:
        self._expire(self._clock())
        return len(self._runs)

    def _expire(self, now: float) -> None:
        # Ordered by last use, so the expired ones are at the front.
        while self._runs:
            run, (used, _) = next(iter(self._runs.items()))
            if now - used < self.ttl:
                return
            del self._runs[run]
