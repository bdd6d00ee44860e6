"""``flow/approval``: a step that waits durably for an operator's answer (ADR 0029).

The answer arrives as the run's one Temporal signal (:data:`~waterflow_core.runs.SIGNAL`), whose
:class:`~waterflow_core.runs.SignalPayload` names the gate's signal, the decision, typed data and
``by``, the API token name the server authenticated. The API checks all of it before it signals
(403/409/422); the workflow checks again, because anyone with access to Temporal can signal a
run: a signal from someone not among the approvers, or with mistyped data, is ignored and
recorded on the gate (:attr:`WaitingFor.refused`), never a failed workflow task.

Determinism: the gate is a ``workflow.wait_condition`` with the gate's ``timeout`` (one durable
timer, or none); signal handlers only record answers, the gate reads them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow

from ..dsl.durations import MAX_DURATION_SECONDS, format_duration, parse_duration
from ..dsl.inputs import coerce_value
from ..dsl.models import SIGNAL_NAME_PATTERN, FlowApprovalWith, InputSpec
from ..runs import WORKFLOW_TYPE, ConditionStatus, SignalPayload, StepStatus, WaitingFor
from . import scopes
from .conditions import Evaluator

DECISIONS = ("approve", "reject")
MAX_SIGNAL_DATA_BYTES = 64 * 1024
"""JSON size of an answer's ``data``: it lands in the run's history and in the step's outputs."""
MAX_MESSAGE_CHARS = 2000
MAX_REFUSED = 10
MAX_REFUSAL_CHARS = 300


class GateError(Exception):
    """A gate cannot wait as written (a bad ``signal`` or ``timeout`` after rendering)."""


def check_answer(
    specs: Mapping[str, InputSpec], decision: str, data: Mapping[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The typed ``data`` of an answer (defaults filled in), and its problems as ``(field, message)``.

    Fields are checked as workflow inputs are; an approval needs the ``required`` ones, a
    rejection may leave them out. Used by the API (422) and, again, by the workflow.
    """
    problems: list[tuple[str, str]] = []
    if decision not in DECISIONS:
        problems.append(("decision", f"must be 'approve' or 'reject', not {_short(decision)}"))
    size = len(json.dumps(data, separators=(",", ":"), default=str).encode())
    if size > MAX_SIGNAL_DATA_BYTES:
        return {}, [*problems, ("data", f"is {size} bytes of JSON, more than {MAX_SIGNAL_DATA_BYTES}")]
    typed: dict[str, Any] = {}
    for key in data:
        if key not in specs:
            known = ", ".join(specs) or "none"
            shown = key if len(key) <= 60 else key[:57] + "..."
            problems.append((f"data.{shown}", f"unknown field (this gate's fields: {known})"))
    for key, spec in specs.items():
        if data.get(key) is not None:
            try:
                typed[key] = coerce_value(spec, data[key])
            except ValueError as exc:
                problems.append((f"data.{key}", str(exc)))
        elif spec.default is not None:
            typed[key] = spec.default
        elif spec.required and decision == "approve":
            problems.append((f"data.{key}", "required to approve"))
        else:
            typed[key] = None
    return typed, problems


def input_fields(specs: Mapping[str, InputSpec]) -> dict[str, dict[str, Any]]:
    """The gate's fields as :attr:`WaitingFor.inputs` shows them (and the API reads them back)."""
    return {
        key: spec.model_dump(mode="json", exclude_defaults=True) | {"type": spec.type} for key, spec in specs.items()
    }


def specs_of(waiting: WaitingFor) -> dict[str, InputSpec]:
    """The typed fields of a gate, from what :func:`input_fields` showed."""
    return {key: InputSpec.model_validate(spec) for key, spec in waiting.inputs.items()}


@dataclass(slots=True)
class Answer:
    """An accepted answer to a gate."""

    approved: bool
    by: str
    at: datetime
    data: dict[str, Any]


@dataclass(slots=True)
class Gate:
    """One waiting gate: what it waits for, and its answer once one was accepted."""

    waiting: WaitingFor
    specs: dict[str, InputSpec]
    answer: Answer | None = None

    def offer(self, signal: SignalPayload) -> None:
        """Accept ``signal`` as this gate's answer, or record why it is ignored."""
        approvers = self.waiting.approvers
        if approvers and signal.by not in approvers:
            who = f"token {_short(signal.by, 100)}" if signal.by else "a caller without an API token"
            self._refuse(f"{who} is not among the approvers ({', '.join(approvers)})")
            return
        typed, problems = check_answer(self.specs, signal.decision, signal.data)
        if problems:
            self._refuse("; ".join(f"{where}: {message}" for where, message in problems[:3]))
            return
        self.answer = Answer(signal.decision == "approve", signal.by, workflow.now(), typed)

    def _refuse(self, why: str) -> None:
        workflow.logger.warning("signal %r for %s ignored: %s", self.waiting.signal, self.waiting.step, why)
        refused = self.waiting.refused
        refused.append(why[:MAX_REFUSAL_CHARS])
        del refused[:-MAX_REFUSED]


@dataclass(slots=True)
class Gates:
    """The gates a run waits at; the run's signal handler hands every signal to :meth:`deliver`."""

    open: list[Gate] = field(default_factory=list)

    def deliver(self, signal: SignalPayload) -> None:
        """Offer ``signal`` to every unanswered gate waiting for its name (in fan-out, several)."""
        matched = [gate for gate in self.open if gate.waiting.signal == signal.name and gate.answer is None]
        if not matched:
            waits = ", ".join(sorted({g.waiting.signal for g in self.open})) or "nothing"
            workflow.logger.warning("signal %r ignored: the run waits for %s", signal.name[:100], waits)
        for gate in matched:
            gate.offer(signal)

    def waiting(self) -> list[WaitingFor]:
        """What the run waits for now."""
        return [gate.waiting for gate in self.open if gate.answer is None]


@dataclass(frozen=True, slots=True)
class GateCall:
    """One ``flow/approval`` step, as the workflow hands it over."""

    flow: FlowApprovalWith
    step_id: str
    path: str
    where: str
    contexts: dict[str, Any]
    status: ConditionStatus
    scope: scopes.Scope
    ev: Evaluator
    gates: Gates
    show: Callable[[WaitingFor | None], None]
    """Sets (or clears) the step's ``waiting`` in progress; the run emits ``step.waiting`` when set."""


@dataclass(slots=True)
class GateOutcome:
    """How a gate ended."""

    outcome: StepStatus
    outputs: dict[str, Any]
    error: str | None
    log: list[str]


async def wait_for_answer(call: GateCall) -> GateOutcome:
    """Wait at the gate until it is answered, times out, or its scope is cancelled."""
    if workflow.info().workflow_type != WORKFLOW_TYPE:
        # A loop over more than 1000 items runs in child workflows, which the API cannot signal.
        raise GateError(
            f"{call.where}: flow/approval cannot run inside a loop over more than 1000 items "
            "(its iterations run in child workflows); approve before the loop, or loop over fewer items"
        )
    flow = call.flow
    signal = _signal(call)
    seconds = _timeout(call)
    message = ""
    if flow.message:
        where = f"{call.where}.with.message"
        rendered = call.ev.render(flow.message, call.contexts, call.status, where=where)
        message = (rendered if isinstance(rendered, str) else json.dumps(rendered))[:MAX_MESSAGE_CHARS]
    now = workflow.now()
    deadline = now + timedelta(seconds=seconds) if seconds is not None else None
    waiting = WaitingFor(
        step=call.path,
        signal=signal,
        approvers=list(flow.approvers),
        message=message,
        deadline=deadline,
        inputs=input_fields(flow.inputs),
    )
    gate = Gate(waiting, dict(flow.inputs))
    call.gates.open.append(gate)
    call.show(waiting)
    timed_out = False
    try:
        await workflow.wait_condition(
            lambda: gate.answer is not None or call.scope.cancelled,
            timeout=seconds,
            timeout_summary=f"flow/approval {call.path}",
        )
    except TimeoutError:
        timed_out = True
    finally:
        call.gates.open.remove(gate)
        call.show(None)
    return _ended(call, gate, signal, seconds, timed_out)


def _ended(call: GateCall, gate: Gate, signal: str, seconds: float | None, timed_out: bool) -> GateOutcome:
    answer = gate.answer
    log = [f"refused: {why}" for why in gate.waiting.refused]
    if answer is not None:
        decision = "approved" if answer.approved else "rejected"
        outputs = {
            "decision": decision,
            "approved": answer.approved,
            "by": answer.by,
            "at": _iso(answer.at),
            "signal": signal,
            "data": answer.data,
        }
        who = answer.by or "a caller without an API token"
        log.append(f"{decision} by {who} (signal {signal})")
        if answer.approved:
            return GateOutcome("success", outputs, None, log)
        return GateOutcome("failure", outputs, f"step {call.path} was rejected by {who} (signal {signal})", log)
    if timed_out:
        outputs = {"decision": "timed_out", "approved": False, "by": "", "at": None, "signal": signal, "data": {}}
        error = (
            f"step {call.path} was not approved within {format_duration(seconds or 0)}: "
            f"nobody answered signal {signal}"
        )
        log.append(f"no answer to signal {signal} within {format_duration(seconds or 0)}")
        return GateOutcome("failure", outputs, error, log)
    log.append(f"stopped waiting for signal {signal}: the step was cancelled")
    return GateOutcome("cancelled", {}, None, log)


def _signal(call: GateCall) -> str:
    text = call.flow.signal
    if text is None:
        return call.step_id
    where = f"{call.where}.with.signal"
    value = call.ev.render(text, call.contexts, call.status, where=where)
    if not isinstance(value, str) or not re.match(SIGNAL_NAME_PATTERN, value):
        raise GateError(
            f"{where}: {_short(value)} is not a signal name (letters, digits and _ . -, at most 100)"
        )
    return value


def _timeout(call: GateCall) -> float | None:
    if call.flow.timeout is None:
        return None
    where = f"{call.where}.with.timeout"
    value = call.ev.render(call.flow.timeout, call.contexts, call.status, where=where)
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise GateError(f"{where}: {exc}") from None
    return min(seconds, MAX_DURATION_SECONDS)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
