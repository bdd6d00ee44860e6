"""The hooks file (``--hooks FILE``): inbound webhooks that may start a workflow (ADR 0037).

A hook is a standing permission to start one workflow, so hooks are server configuration, not
something the API creates::

    hooks:
      deploy-on-push:
        workflow: deploy.yaml            # relative to this file
        secret-file: deploy-hook.secret  # mode 600; the HMAC key
        inputs:
          ref: $<< payload.ref >>
          sha: $<< payload.after >>
        id: push-$<< headers.x-github-delivery >>

Everything is checked when the server starts: the workflow loads, each mapped input is one the
workflow declares, each template parses over ``payload`` and ``headers``, the secret is readable
by its owner only and long enough. A mistake stops the start, naming ``file:line:col``.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waterflow_core.dsl import load_workflow
from waterflow_core.dsl.strict_yaml import Path as YamlPath
from waterflow_core.dsl.strict_yaml import load_strict_yaml
from waterflow_core.errors import ErrorItem, ExpressionError, WorkflowValidationError, format_path
from waterflow_core.expressions import Template, parse_template

HOOKS_ENV = "WATERFLOW_HOOKS"
HOOK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
CONTEXTS = ("payload", "headers")
"""What a hook's templates may read: the JSON body, and the request headers (names lower-case)."""
MIN_SECRET_LENGTH = 16
_HOOK_KEYS = ("workflow", "secret-file", "inputs", "id")


class HooksConfigError(Exception):
    """The hooks file is unusable; the message names ``file:line:col`` of each problem (never a secret)."""


@dataclass(frozen=True)
class Hook:
    """One inbound webhook: the workflow it starts, its HMAC key and how a delivery maps to inputs."""

    name: str
    workflow: str
    """The workflow text, read when the server started."""
    source: str
    secret: bytes = field(repr=False)
    inputs: Mapping[str, Template] = field(default_factory=dict)
    id: Template | None = None
    """Renders the run id (an idempotency key: a redelivery starts no second run)."""


def load_hooks(path: Path) -> dict[str, Hook]:
    """The hooks of the file at ``path``; :class:`HooksConfigError` listing every problem."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise HooksConfigError(f"{path}: cannot read the hooks file: {exc.strerror or exc}") from None
    try:
        doc = load_strict_yaml(text, source=str(path))
    except WorkflowValidationError as exc:
        raise HooksConfigError(str(exc)) from None
    problems: list[ErrorItem] = []

    def problem(where: YamlPath, message: str, *, key: bool = False) -> None:
        position = doc.key_position(where) if key else doc.value_position(where)
        problems.append(ErrorItem(line=position.line, column=position.column, path=format_path(where), message=message))

    hooks: dict[str, Hook] = {}
    data = doc.data
    if not isinstance(data, dict) or set(data) != {"hooks"} or not isinstance(data["hooks"], dict):
        problem((), "a hooks file is a mapping with one key, 'hooks': a mapping of hook name to its settings")
    else:
        for name, settings in data["hooks"].items():
            hook = _hook(path.parent, name, settings, problem)
            if hook is not None:
                hooks[name] = hook
    if problems:
        raise HooksConfigError(str(WorkflowValidationError(problems, source=str(path))))
    return hooks


def _hook(base: Path, name: str, settings: Any, problem: Any) -> Hook | None:
    where: YamlPath = ("hooks", name)
    if not HOOK_NAME.match(name):
        problem(where, "a hook name is 1-100 letters, digits and . _ - (it is part of the URL)", key=True)
        return None
    if not isinstance(settings, dict):
        problem(where, "expected a mapping with workflow, secret-file, and optionally inputs and id")
        return None
    for key in settings:
        if key == "secret":
            problem(
                (*where, key),
                "a secret is never written in the hooks file: put it in a file (mode 600) and name it with secret-file",
                key=True,
            )
        elif key not in _HOOK_KEYS:
            problem((*where, key), f"unknown key {key!r} (expected {', '.join(_HOOK_KEYS)})", key=True)
    for required in ("workflow", "secret-file"):
        if required not in settings:
            problem(where, f"missing key {required!r}", key=True)
    if "workflow" not in settings or "secret-file" not in settings:
        return None
    workflow_path = base / str(settings["workflow"])
    try:
        text = workflow_path.read_text(encoding="utf-8")
        workflow = load_workflow(text, source=str(workflow_path))
    except (OSError, UnicodeDecodeError) as exc:
        problem((*where, "workflow"), f"cannot read {workflow_path}: {getattr(exc, 'strerror', None) or exc}")
        return None
    except WorkflowValidationError as exc:
        problem((*where, "workflow"), f"the workflow is invalid: {exc}")
        return None
    secret = _secret(base / str(settings["secret-file"]), (*where, "secret-file"), problem)
    inputs: dict[str, Template] = {}
    raw_inputs = settings.get("inputs", {})
    if raw_inputs == "":
        raw_inputs = {}
    if not isinstance(raw_inputs, dict):
        problem((*where, "inputs"), "expected a mapping of input name to a value or $<< >> template")
    else:
        declared = set(workflow.inputs)
        for input_name, value in raw_inputs.items():
            at = (*where, "inputs", input_name)
            if input_name not in declared:
                listed = ", ".join(sorted(declared)) or "none"
                problem(at, f"workflow {workflow.name!r} has no input {input_name!r} (its inputs: {listed})", key=True)
                continue
            template = _template(value, at, problem)
            if template is not None:
                inputs[input_name] = template
    run_id = _template(settings["id"], (*where, "id"), problem) if "id" in settings else None
    if secret is None:
        return None
    return Hook(name=name, workflow=text, source=str(workflow_path), secret=secret, inputs=inputs, id=run_id)


def _template(value: Any, where: YamlPath, problem: Any) -> Template | None:
    if not isinstance(value, str):
        problem(where, "expected text: a value or a $<< >> template over payload and headers")
        return None
    try:
        return parse_template(value, allowed_contexts=CONTEXTS)
    except ExpressionError as exc:
        problem(where, f"{exc} (templates may read payload and headers)")
        return None


def _secret(path: Path, where: YamlPath, problem: Any) -> bytes | None:
    try:
        mode = path.stat().st_mode
        secret = path.read_bytes().strip()
    except OSError as exc:
        problem(where, f"cannot read the secret file {path}: {exc.strerror or exc}")
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        problem(where, f"the secret file {path} is readable by other users; restrict it with: chmod 600 {path}")
        return None
    if len(secret) < MIN_SECRET_LENGTH:
        problem(where, f"the secret in {path} is shorter than {MIN_SECRET_LENGTH} characters")
        return None
    return secret


__all__ = ["HOOKS_ENV", "Hook", "HooksConfigError", "load_hooks"]
