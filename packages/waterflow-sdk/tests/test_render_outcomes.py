"""How ``status`` and ``submit --wait`` show compensations and earlier attempts' errors."""

from __future__ import annotations

from waterflow_sdk.models import Run
from waterflow_sdk.render import ProgressPrinter, run_lines

RUN = {
    "id": "r1",
    "name": "saga",
    "status": "failed",
    "jobs": [
        {
            "id": "provision",
            "status": "failure",
            "steps": [
                {"id": "create", "status": "success", "agent": "a1"},
                {
                    "id": "configure",
                    "status": "failure",
                    "attempt": 12,
                    "attempt_errors": [f"exit {n}" for n in range(3, 12)] + ["two\nlines"],
                    "error": "step provision/configure failed after 12 attempts: exit 12",
                },
                {"id": "create.compensate", "job": "provision", "status": "success", "agent": "a1"},
            ],
        }
    ],
    "compensations": [
        {"id": "port.compensate", "job": "provision", "status": "failure", "agent": "a2", "error": "busy"},
        {"id": "create.compensate", "job": "provision", "status": "success", "agent": "a1"},
    ],
}


def test_attempt_errors_are_numbered_back_from_the_last_attempt() -> None:
    lines = [line.strip() for line in run_lines(Run.model_validate(RUN))]
    attempts = [line for line in lines if line.startswith("attempt ")]
    # The list holds the last ten earlier attempts of twelve: attempts 2 to 11.
    assert attempts[0] == "attempt 2 failed: exit 3"
    assert attempts[-1] == "attempt 11 failed: two"
    assert lines[lines.index("attempt 11 failed: two") + 1] == "lines"


def test_compensations_section_in_run_order() -> None:
    lines = run_lines(Run.model_validate(RUN))
    start = lines.index("  compensations (in the order they ran):")
    assert lines[start + 1 :] == [
        "    1. [provision/port.compensate] FAILED on a2",
        "       error: busy",
        "    2. [provision/create.compensate] ok on a1",
    ]


def test_wait_prints_the_section_once_when_the_run_ends() -> None:
    printer = ProgressPrinter()
    running = Run.model_validate({**RUN, "status": "running"})
    assert "  compensations (in the order they ran):" not in list(printer.updates(running))
    done = list(printer.updates(Run.model_validate(RUN)))
    assert done == run_lines(Run.model_validate(RUN))[-4:]
    assert list(printer.updates(Run.model_validate(RUN))) == []
