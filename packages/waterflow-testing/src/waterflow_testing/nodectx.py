"""A :class:`NodeContext` whose log is recorded, for tests that call a node's ``run`` directly."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from waterflow_core.node import NodeContext

__all__ = ["LogRecorder", "recording_context"]


class LogRecorder(logging.Handler):
    """Keeps every record a node logged; ``messages(stream)`` filters on the record's ``stream``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, stream: str | None = None) -> list[str]:
        """The logged messages, all or only those of one output stream (``stdout``, ``stderr``)."""
        return [r.getMessage() for r in self.records if stream in (None, getattr(r, "stream", None))]


def recording_context(workdir: Path) -> tuple[NodeContext, LogRecorder]:
    """A context for ``node.run(ctx, inputs)`` with ``workdir`` and a private, recorded logger."""
    recorder = LogRecorder()
    # A logger of its own per context: records never leak into other tests or the root logger.
    logger = logging.getLogger(f"waterflow.test.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(recorder)
    return NodeContext(log=logger, workdir=workdir), recorder
