"""The workflow DSL: models, the strict loader and static checks.

``load_workflow(text)`` is the one entry point: it returns a validated :class:`Workflow` or raises
:class:`~waterflow_core.errors.WorkflowValidationError` listing every problem with its line and
column.
"""

from .durations import format_duration, parse_duration
from .inputs import resolve_inputs
from .loader import NodeChecker, WithProblem, load_workflow
from .models import Check, Compensate, Defaults, InputSpec, Job, Retry, Step, Strategy, Workflow

__all__ = [
    "Check",
    "Compensate",
    "Defaults",
    "InputSpec",
    "Job",
    "NodeChecker",
    "Retry",
    "Step",
    "Strategy",
    "WithProblem",
    "Workflow",
    "format_duration",
    "load_workflow",
    "parse_duration",
    "resolve_inputs",
]
