"""Masking attacks through the whole stack: a secret one step resolved, printed by other steps of
the same run in every common form, across the 16 KiB line split and at the output-tail cut, never
reaches logs, outputs, errors, the run's history or the API in the clear."""

from __future__ import annotations

import base64
import json
import textwrap
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client as TemporalClient

from waterflow_agent.masking import MIN_FRAGMENT, secret_forms
from waterflow_node_shell.process import MAX_LOG_LINE
from waterflow_sdk import Client
from waterflow_testing import unique_name

SECRET = f'p@ss w/"q\\ü&=+rd-42-{uuid.uuid4().hex[:8]}'
HEAD = 5  # characters of the secret before the 16 KiB split
TAIL = 14  # bytes of the secret inside the 64-byte output tail

WORKFLOW = """
name: masking-attacks
inputs:
  dir: {{type: string, required: true}}
env:
  DIR: $<< inputs.dir >>
jobs:
  leak:
    runs-on: {group}
    steps:
      - id: write
        uses: exec/shell
        env: {{T: $<< secrets.TOKEN >>}}
        with:
          command: printf '%s' "$T" > "$DIR/secret"
      - id: forms
        uses: exec/shell
        with:
          command: |
            S=$(cat "$DIR/secret")
            echo "plain: $S"
            printf '%s' "$S" | base64 -w0; echo
            for prefix in a ab abc user: ; do printf '%s%s' "$prefix" "$S" | base64 -w0; echo; done
            printf '%s' "$S" | base64
            python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$S"
            python3 -c 'import sys, json; print(json.dumps({{"token": sys.argv[1]}}))' "$S"
            echo "out=$S" >> "$WATERFLOW_OUTPUT"
            echo "b64=$(printf '%s' "$S" | base64 -w0)" >> "$WATERFLOW_OUTPUT"
      - id: long-line
        uses: exec/shell
        with:
          command: |
            head -c {pad} /dev/zero | tr '\\0' x
            cat "$DIR/secret"
            sleep 1
            echo tail-of-the-line
      - id: output-tail
        uses: exec/shell
        with:
          output-cap: 64
          command: |
            cat "$DIR/secret"
            printf 'y%.0s' $(seq {fill})
      - id: fails
        uses: exec/shell
        with:
          command: |
            echo "before $(cat "$DIR/secret") after" >&2
            exit 3
"""


def history_text(history: dict[str, Any]) -> str:
    """The history as JSON, plus every payload's data decoded (payloads are base64 in JSON)."""
    decoded: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, str) and "metadata" in node:
                decoded.append(base64.b64decode(data).decode("utf-8", errors="replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(history)
    return json.dumps(history) + "\n".join(decoded)


async def test_secrets_of_a_run_are_masked_in_every_step_form_and_cut(
    start_server, start_agent, temporal_client: TemporalClient, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    group = unique_name("group")
    agent = start_agent(unique_name("agent"), [group], env={"WATERFLOW_SECRET_TOKEN": SECRET})
    server = start_server()
    tail_bytes = len(SECRET.encode()) - TAIL
    assert "ü" not in SECRET[-TAIL:] and TAIL >= MIN_FRAGMENT
    workflow = WORKFLOW.format(group=group, pad=MAX_LOG_LINE - HEAD, fill=64 - TAIL)
    with Client(server.url) as client:
        ref = client.submit(textwrap.dedent(workflow), inputs={"dir": str(tmp_path)})
        run = client.wait(ref.id, timeout=180, poll=0.2)
        logs = "\n".join(client.logs(ref.id))
    assert (tmp_path / "secret").read_text() == SECRET  # the attack itself worked
    assert tail_bytes > 0

    steps = {step.id: step for _, step in run.steps()}
    assert run.status == "failed" and steps["fails"].status == "failure"
    # Legitimate work still happens: the outputs are there, masked.
    assert steps["forms"].outputs["out"] == "***" and steps["forms"].outputs["b64"] == "***"
    forms_log = "\n".join(steps["forms"].log_tail)
    assert "plain: ***" in forms_log and '{"token": "***"}' in forms_log
    assert steps["output-tail"].outputs["stdout"].startswith("***y")
    assert "before *** after" in (steps["fails"].error or "")

    with urllib.request.urlopen(f"{server.url}/v1/workflows/{ref.id}", timeout=30) as response:
        api = response.read().decode()
    history = history_text((await temporal_client.get_workflow_handle(ref.id).fetch_history()).to_json_dict())
    shipped = (agent.workdir / "work" / "logs" / "steps.jsonl").read_text()
    places = {"api": api, "logs": logs, "history": history, "log handler": shipped}
    forms = secret_forms(SECRET)
    assert len(forms) >= 8
    for where, text in places.items():
        for form in forms:
            assert form not in text, (where, form)
        # The halves around the 16 KiB split, and the part of the secret inside the 64-byte tail.
        assert "x" * 8 + SECRET[:HEAD] not in text, where
        assert SECRET[HEAD:] not in text, where
        assert SECRET[-TAIL:] + "y" not in text, where
    # The long line really was split there, and both halves were masked.
    pieces = [json.loads(line)["message"] for line in shipped.splitlines() if '"step": "long-line"' in line]
    assert pieces[0].endswith("x***") and len(pieces[0]) == MAX_LOG_LINE - HEAD + 3, pieces[0][-20:]
    assert pieces[1] == "***tail-of-the-line"
