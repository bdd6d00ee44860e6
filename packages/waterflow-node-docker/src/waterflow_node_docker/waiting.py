"""``wait``: poll the project's containers until they are up, done by Waterflow for v1 and v2 alike.

Ready means running, and healthy when the container has a healthcheck. A container that exited (or
died) and that the daemon will not restart fails the wait at once; starting, unhealthy and
restarting containers are waited for, since they may still come up, until the timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from .capture import Logger
from .containers import Container, log_tail, project_containers
from .engine import Engine
from .errors import failed

POLL = 0.5
LOG_LINES = 10


async def wait_ready(
    engine: Engine, project: str, services: Collection[str], timeout: float, log: Logger
) -> list[Container]:
    """The containers of ``services`` once all are ready; fails the step when one is gone or at ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_report = ""
    while True:
        containers = [c for c in await project_containers(engine, project) if c.service in services]
        gone = [c for c in containers if c.gone]
        if gone:
            raise await _failure(engine, f"project {project}: a container stopped", gone, log)
        pending = [c for c in containers if not c.ready]
        if not pending:
            log.info("project %s is up: %s", project, ", ".join(c.name for c in containers) or "no containers")
            return containers
        report = "; ".join(c.describe() for c in pending)
        if report != last_report:  # one line per change, not one per poll
            log.info("waiting for %s", report)
            last_report = report
        if loop.time() >= deadline:
            raise await _failure(engine, f"project {project} not ready after {timeout:g}s", pending, log)
        await asyncio.sleep(POLL)


async def _failure(engine: Engine, headline: str, containers: list[Container], log: Logger) -> Exception:
    lines = [f"{headline}: " + "; ".join(c.describe() for c in containers)]
    for container in containers:
        tail = await log_tail(engine, container, LOG_LINES)
        if tail:
            lines.append(f"last log lines of {container.name}:")
            lines.extend(f"  {line}" for line in tail)
    for line in lines[1:]:
        log.warning("%s", line)
    details = {"containers": [c.output().model_dump(mode="json", by_alias=True) for c in containers]}
    return failed("\n".join(lines), details)
