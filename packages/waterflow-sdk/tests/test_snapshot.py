"""A run's snapshot (what it was started with) through the API, both clients and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from waterflow_sdk import AsyncClient, Client, WaterflowAPIError
from waterflow_testing import unique_name

WORKFLOW = """\
# kept as submitted, comments included
name: snapshot-check
inputs:
  count: {type: number, default: 1}
jobs:
  j:
    runs-on: GROUP
    steps:
      - {id: say, uses: exec/shell, with: {command: 'echo $<< inputs.count >>'}}
"""


async def test_the_snapshot_is_the_text_and_typed_inputs_the_run_started_with(  # type: ignore[no-untyped-def]
    start_server, start_agent, waterflow_cli, tmp_path: Path
) -> None:
    group = unique_name("group")
    start_agent(unique_name("agent"), [group])
    server = start_server()
    text = WORKFLOW.replace("GROUP", group)
    path = tmp_path / "wf.yaml"
    path.write_text(text)
    with Client(server.url) as client:
        ref = client.submit(text, inputs={"count": "3"})
        client.wait(ref.id, timeout=120, poll=0.2)
        path.write_text("name: changed afterwards\n")  # the run's snapshot does not follow the file
        snapshot = client.snapshot(ref.id)
        assert snapshot.source == text
        assert snapshot.inputs == {"count": 3}
        assert snapshot.workflow["jobs"]["j"]["runs-on"] == group
        with pytest.raises(WaterflowAPIError) as missing:
            client.snapshot("no-such-run")
        assert missing.value.status == 404
    async with AsyncClient(server.url) as aclient:
        assert (await aclient.snapshot(ref.id)).source == text

    shown = waterflow_cli("snapshot", ref.id, server=server.url)
    assert shown.returncode == 0, shown.stderr
    assert "# kept as submitted, comments included" in shown.stdout
    assert "count = 3" in shown.stdout.splitlines()
    as_json = waterflow_cli("snapshot", ref.id, "-o", "json", server=server.url)
    assert json.loads(as_json.stdout)["inputs"] == {"count": 3}
