"""each-server that ops can trust (ADR 0028), through the whole stack.

Three agents of one group start and the run is submitted as soon as they report ready; one
fails its check. The other two finish (each-server does not cancel them by default) and the
run's error names the failed server.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from waterflow_sdk import Client
from waterflow_testing import unique_name


def test_one_failing_server_does_not_stop_the_others(start_server, start_agent, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = unique_name("fleet")
    server = start_server()
    agents = [start_agent(unique_name(f"agent-{n}"), [group]) for n in range(3)]
    bad = agents[1].name
    workflow = textwrap.dedent(
        f"""
        name: fleet-check
        jobs:
          check:
            runs-on: {group}
            strategy: {{each-server: true}}
            steps:
              - id: disk
                uses: exec/shell
                with:
                  command: |
                    if [ "$<< server.name >>" = "{bad}" ]; then echo "disk full" >&2; exit 1; fi
                    sleep 1
                    touch "{tmp_path}/$<< server.name >>"
        """
    )
    with Client(server.url) as client:
        run = client.wait(client.submit(workflow).id, timeout=180, poll=0.2)

    assert run.status == "failed", run
    instances = {j.instance: j.status for j in run.jobs if j.instance}
    assert instances == {a.name: ("failure" if a.name == bad else "success") for a in agents}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(a.name for a in agents if a.name != bad)
    assert run.error is not None
    assert run.error.startswith(f"job check failed on 1 of 3 servers ({bad}): step check/disk#{bad} failed"), run.error
