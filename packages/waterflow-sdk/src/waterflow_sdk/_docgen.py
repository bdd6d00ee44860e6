"""The SDK reference (docs/reference/sdk.md), generated from the public classes of ``waterflow_sdk``.

``python -m waterflow_sdk._docgen > docs/reference/sdk.md`` writes it: the hand-written
introduction and example below, then every public class with its signature, docstring, methods
and (for models) fields, read from the code. ``--check FILE`` exits 1 when FILE is not what it
would write, so a test keeps the page in step with the code.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

GENERATOR = "python -m waterflow_sdk._docgen > docs/reference/sdk.md"

INTRO = f"""# Python SDK reference

<!-- Generated from the code by `{GENERATOR}`: do not edit by hand (a test compares them). -->

`pip install waterflow-sdk` gives `waterflow_sdk`: `Client` (blocking, over `httpx.Client`) and
`AsyncClient` (the same methods, awaited, over `httpx.AsyncClient`). Every endpoint of the
[REST API](api.md) is a method; answers are the typed models below. The `waterflow` command
([client commands](cli/client.md)) is built on the same client.

- **Server and token**: `Client()` talks to `$WATERFLOW_SERVER` (default
  `http://127.0.0.1:8080`) with the bearer token `$WATERFLOW_API_TOKEN`, unless given
  `server=` and `token=`.
- **Errors**: `WaterflowAPIError` when the server answers with an error (`status`, `code`,
  `message`, and `errors` placed at line:column for a workflow), `WaterflowConnectionError`
  when it cannot be reached, `RunTimeoutError` when `wait` gives up. All are
  `WaterflowSDKError`s.
- **Retries**: a request is sent again, with growing pauses, after a connection error when
  that is safe (see `Retry`): always when it never reached the server, and when its answer was
  lost for reads, `validate`, and `submit` with an `id` (the idempotency key,
  [ADR 0009](../adr/0009-api-idempotency.md)). `cancel`, `signal` and `submit` without an `id`
  are not resent after a lost answer: the error tells the caller, who knows whether to.
- **Live logs**: `follow_logs(id)` yields step events and log lines as they happen
  (`async for` on `AsyncClient`) until the run ends, reopening a dropped or expired stream
  without repeating entries.

## Example

Submit a workflow, stream its logs while it runs, read its outputs (this block is run by the
test suite against a real server and agent serving the group `demo`):

```python
from waterflow_sdk import Client

WORKFLOW = \"\"\"
name: sdk-example
inputs:
  who: {{type: string, default: world}}
jobs:
  greet:
    runs-on: demo
    steps:
      - id: hello
        uses: exec/shell
        with:
          command: |
            echo "hello, $<< inputs.who >>"
            echo "greeting=hello, $<< inputs.who >>" >> "$WATERFLOW_OUTPUT"
\"\"\"

with Client() as client:  # $WATERFLOW_SERVER, $WATERFLOW_API_TOKEN
    problems = client.validate(WORKFLOW)
    if problems:
        raise SystemExit("\\n".join(str(problem) for problem in problems))
    ref = client.submit(WORKFLOW, inputs={{"who": "sdk"}})
    for entry in client.follow_logs(ref.id):  # live, until the run ends
        print(entry)  # [greet/hello] hello, sdk
    run = client.get(ref.id)
    step = run.jobs[0].steps[0]
    print(run.status, step.outputs["greeting"])  # succeeded hello, sdk
```

With `AsyncClient` the same reads `async with AsyncClient() as client:`, `await
client.submit(...)` and `async for entry in client.follow_logs(ref.id):`.
"""

CLIENTS = ("Client", "AsyncClient", "Retry")
MODELS = (
    "RunRef",
    "Run",
    "Job",
    "Step",
    "RunPage",
    "RunSummary",
    "LogEntry",
    "CancelResult",
    "SignalAccepted",
    "Schedule",
    "ScheduledRun",
    "ScheduleTriggered",
    "Validation",
    "ErrorItem",
    "Node",
    "Agent",
)
ERRORS = ("WaterflowSDKError", "WaterflowAPIError", "WaterflowConnectionError", "RunTimeoutError")
HIDDEN = frozenset({"Retry.delay"})
"""Public for the clients' shared plumbing, not for users."""


def render() -> str:
    """The whole page."""
    import waterflow_sdk

    parts = [INTRO]
    for title, names in (("Clients", CLIENTS), ("Models", MODELS), ("Errors", ERRORS)):
        parts.append(f"## {title}\n")
        parts += [_class(getattr(waterflow_sdk, name)) for name in names]
    return "\n".join(parts).rstrip() + "\n"


def _class(cls: type) -> str:
    blocks = [f"### `{cls.__name__}`"]
    if issubclass(cls, BaseModel):
        blocks += [_doc(cls), _fields(cls)]
    else:
        init = inspect.signature(cls.__init__)
        if any(param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD) for param in init.parameters.values()):
            blocks.append(f"```python\n{cls.__name__}{_params(init, returns=False)}\n```")
        blocks.append(_doc(cls))
    blocks += [_method(cls, name) for name in _methods(cls)]
    return "\n\n".join(block for block in blocks if block) + "\n"


def _methods(cls: type) -> list[str]:
    own = [
        name
        for name, member in vars(cls).items()
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))
    ]
    return [
        name
        for name in own
        if f"{cls.__name__}.{name}" not in HIDDEN and not (issubclass(cls, BaseModel) and name.startswith("model_"))
    ]


def _method(cls: type, name: str) -> str:
    member = vars(cls)[name]
    if isinstance(member, property):
        return f"#### `{cls.__name__}.{name}` (property)\n\n{_doc(member)}"
    prefix = "async " if inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member) else ""
    signature = _params(inspect.signature(member))
    return f"#### `{prefix}{cls.__name__}.{name}{signature}`\n\n{_doc(member)}"


def _params(signature: inspect.Signature, *, returns: bool = True) -> str:
    """``(a: int, *, b: str = 'x') -> T`` with the annotations as written in the code."""
    parts: list[str] = []
    star = False
    for param in signature.parameters.values():
        if param.name == "self":
            continue
        if param.kind is param.KEYWORD_ONLY and not star:
            parts.append("*")
        star = star or param.kind in (param.KEYWORD_ONLY, param.VAR_POSITIONAL)
        stars = "*" if param.kind is param.VAR_POSITIONAL else "**" if param.kind is param.VAR_KEYWORD else ""
        text = stars + param.name
        if param.annotation is not param.empty:
            text += f": {_type(param.annotation)}"
        if param.default is not param.empty:
            text += f" = {param.default!r}"
        parts.append(text)
    result = f"({', '.join(parts)})"
    if returns and signature.return_annotation is not signature.empty:
        result += f" -> {_type(signature.return_annotation)}"
    return result


def _type(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    return re.sub(r"\bp\.", "", text)  # the clients' alias of _protocol, where Retry, Moment... live


def _doc(obj: Any) -> str:
    """A docstring as Markdown: reStructuredText roles and literals turned into code spans."""
    doc = inspect.getdoc(obj) or ""
    doc = re.sub(r":(?:class|meth|func|data|attr):`~(?:[\w.]+\.)?(\w+)`", r"`\1`", doc)
    doc = re.sub(r":(?:class|meth|func|data|attr):`([\w.]+)`", r"`\1`", doc)
    return doc.replace("``", "`")


def _fields(model: type[BaseModel]) -> str:
    notes = _field_docs(model)
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        annotation = _annotation(model, name)
        if info.is_required():
            default = "required"
        elif info.default_factory is not None:
            default = f"`{info.default_factory()!r}`"  # type: ignore[call-arg]
        else:
            default = f"`{info.default!r}`"
        meaning = " ".join((info.description or notes.get(name, "")).split()).replace("``", "`")
        rows.append(f"| `{name}` | `{annotation}` | {default} | {meaning} |")
    return "\n".join(rows)


def _annotation(model: type[BaseModel], name: str) -> str:
    for cls in model.__mro__:
        raw = getattr(cls, "__annotations__", {}).get(name)
        if raw is not None:
            text = raw if isinstance(raw, str) else getattr(raw, "__name__", repr(raw))
            return text.replace("|", "\\|")
    return ""


def _field_docs(model: type[BaseModel]) -> dict[str, str]:
    """The string literal after each field in the class body (the attribute docstring convention)."""
    notes: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                notes[node.target.id] = following.value.value
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    """Print the page, or with ``--check FILE`` say whether FILE is up to date (exit 1 if not)."""
    args = list(sys.argv[1:] if argv is None else argv)
    page = render()
    if args[:1] == ["--check"] and len(args) == 2:
        if Path(args[1]).read_text(encoding="utf-8") == page:
            return 0
        print(f"{args[1]} is stale: run `{GENERATOR}`", file=sys.stderr)
        return 1
    if args:
        print(f"usage: {GENERATOR}  |  python -m waterflow_sdk._docgen --check FILE", file=sys.stderr)
        return 2
    sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
