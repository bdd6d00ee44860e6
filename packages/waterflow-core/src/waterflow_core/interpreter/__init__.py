"""The interpreter workflow ``WaterflowRun``: runs a validated workflow on Temporal.

Submodules are small and pure (the workflow sandbox may re-import them): ``dag`` (job order and
statuses), ``conditions`` (expressions in the workflow), ``contexts`` (what expressions and agents
see), ``fanout`` (matrix / each-server), ``retry`` (DSL timeouts and retries as activity options),
``failures`` (activity errors as user messages), ``stepcall`` (one step or compensation
activity and the one launcher of it), ``compensation`` (saga), ``flow`` (the flow nodes:
sleep, condition, loop), ``steptree`` (nested steps in progress) and ``workflow`` (the
``@workflow.defn`` class). ``worker`` and ``client`` are the host-side helpers the server uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from waterflow_core.lazy import lazy_exports

if TYPE_CHECKING:
    from .client import start_run
    from .worker import build_interpreter_worker
    from .workflow import WaterflowRun

__all__ = ["WaterflowRun", "build_interpreter_worker", "start_run"]

_LAZY = {"WaterflowRun": ".workflow", "build_interpreter_worker": ".worker", "start_run": ".client"}


__getattr__ = lazy_exports(globals(), _LAZY)
