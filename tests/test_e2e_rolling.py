"""Acceptance (issue 14): rolling batches with a failure budget, and a hung server in the matrix.

Real agent processes (started in parallel, without their file watcher: ten on two cores), a
real ``waterflow server``, real shell steps that write their own start and end times. Server
names share a prefix and end in ``-00``, ``-01``...: each-server takes them in name order.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

from waterflow_sdk import Client
from waterflow_testing import eventually, unique_name
from waterflow_testing.webhook import webhook_receiver

LIGHT = ["--no-reload-watch"]
"""The lightest agent start the fixtures allow: no inotify watcher per agent."""


def start_fleet(start_agent, client: Client, count: int) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """``count`` agents of a new group, all ready and listed by the registry: (group, names)."""
    group = unique_name("fleet")
    base = unique_name("srv")
    names = [f"{base}-{n:02d}" for n in range(count)]
    agents = [start_agent(name, [group], args=LIGHT, ready=False) for name in names]
    for agent in agents:
        agent.wait_ready()
    # each-server takes the servers listed when the job starts: wait until all of them are.
    asyncio.run(
        eventually(
            lambda: {a.name for a in client.agents() if group in a.groups},
            lambda listed: listed == set(names),
            timeout=60,
        )
    )
    return group, names


def detail(url: str, run_id: str) -> dict[str, Any]:
    """``GET /v1/workflows/{id}`` as JSON (the SDK's models do not carry ``matrix`` yet)."""
    with urllib.request.urlopen(f"{url}/v1/workflows/{run_id}", timeout=10) as response:
        return dict(json.loads(response.read()))


def times(path: Path) -> dict[str, float]:
    """The ``start <t>`` / ``end <t>`` lines a step wrote."""
    return {kind: float(value) for kind, value in (line.split() for line in path.read_text().splitlines())}


def test_ten_servers_roll_in_batches_and_stop_when_the_budget_is_exceeded(  # type: ignore[no-untyped-def]
    start_server, start_agent, tmp_path: Path
) -> None:
    server = start_server()
    with Client(server.url) as client:
        group, names = start_fleet(start_agent, client, 10)
        bad = {names[2], names[3]}
        workflow = textwrap.dedent(
            f"""
            name: rolling-restart
            jobs:
              restart:
                runs-on: {group}
                strategy: {{each-server: true, batch: [1, 30%], max-fail-percentage: 20}}
                steps:
                  - id: restart
                    uses: exec/shell
                    timeout: 60s
                    with:
                      command: |
                        out="{tmp_path}/$<< server.name >>"
                        echo "start $(date +%s.%N)" >> "$out"
                        sleep 0.5
                        echo "end $(date +%s.%N)" >> "$out"
                        case "$<< server.name >>" in {"|".join(sorted(bad))})
                          echo "health check failed" >&2; exit 1;;
                        esac
                  - id: verify
                    uses: exec/shell
                    with: {{command: 'true'}}
            """
        )
        run = client.wait(client.submit(workflow).id, timeout=300, poll=0.3)
        body = detail(server.url, run.id)

    # As documented (docs/reference/execution.md, ADR 0036): 10 servers, [1, 30%] -> batches of
    # 1, 3, 3, 3. Batch 1 (the canary) passes; batch 2 loses 2 of its 3: 2 of the 4 servers
    # started failed, 50 % > 20 %, so batches 3 and 4 never start.
    assert run.status == "failed", run
    instances = {j.instance: j.status for j in run.jobs if j.instance}
    assert instances == {
        names[0]: "success",
        names[1]: "success",
        names[2]: "failure",
        names[3]: "failure",
        **{n: "skipped" for n in names[4:]},
    }
    assert run.error is not None
    assert run.error.startswith(
        f"job restart failed on 2 of 10 servers ({names[2]}, {names[3]}); stopped after batch 2 of 4: "
        "2 of the 4 servers started failed, more than max-fail-percentage 20%; 6 servers not started: "
        f"step restart/restart#{names[2]} failed"
    ), run.error
    # Nothing ran on the servers of batches 3 and 4.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[:4])
    # The timestamps prove the batches: batch 2 started after the canary ended, all three at once.
    canary = times(tmp_path / names[0])
    second = [times(tmp_path / n) for n in names[1:4]]
    assert all(t["start"] >= canary["end"] for t in second)
    assert max(t["start"] for t in second) < min(t["end"] for t in second)  # they overlapped

    (matrix,) = body["matrix"]
    assert matrix["job"] == "restart" and matrix["steps"] == ["restart", "verify"]
    rows = [(r["instance"], r["batch"], r["status"], r["cells"]) for r in matrix["rows"]]
    assert rows == [
        (names[0], 1, "ok", ["ok", "ok"]),
        (names[1], 2, "ok", ["ok", "ok"]),
        (names[2], 2, "failed", ["failed", "skipped"]),
        (names[3], 2, "failed", ["failed", "skipped"]),
        *[(n, b, "skipped", ["skipped", "skipped"]) for n, b in zip(names[4:], [3, 3, 3, 4, 4, 4], strict=True)],
    ]
    assert matrix["rows"][4]["error"].startswith("not started: the job stopped after batch 2 of 4")


def test_a_hung_server_shows_in_the_matrix_until_its_timeout_fails_it(  # type: ignore[no-untyped-def]
    start_server, start_agent, tmp_path: Path
) -> None:
    with webhook_receiver() as hook:
        server = start_server(env={"WATERFLOW_EVENT_HANDLERS": "webhook", "WATERFLOW_EVENT_WEBHOOK_URL": hook.url})
        with Client(server.url) as client:
            group, names = start_fleet(start_agent, client, 5)
            hung = names[3]
            workflow = textwrap.dedent(
                f"""
                name: fleet-upgrade
                jobs:
                  upgrade:
                    runs-on: {group}
                    strategy: {{each-server: true}}
                    steps:
                      - id: upgrade
                        uses: exec/shell
                        timeout: 10s
                        with:
                          command: |
                            if [ "$<< server.name >>" = "{hung}" ]; then sleep 600; fi
                            touch "{tmp_path}/$<< server.name >>"
                """
            )
            run_id = client.submit(workflow).id

            # While it hangs, the others finish: four rows ok, the hung one still running.
            def cells() -> dict[str, list[str]]:
                body = detail(server.url, run_id)
                return {r["instance"]: [r["status"], *r["cells"]] for m in body["matrix"] for r in m["rows"]}

            others = {n: ["ok", "ok"] for n in names if n != hung}
            seen = asyncio.run(eventually(cells, lambda c: {n: c.get(n) for n in others} == others, timeout=60))
            assert seen[hung] == ["running", "running"], seen

            run = client.wait(run_id, timeout=120, poll=0.3)
            body = detail(server.url, run_id)

        def finished() -> list[dict[str, Any]]:
            return [e for e in hook.delivered() if e["workflow_id"] == run_id and e["type"] == "run.failed"]

        (event, *_) = asyncio.run(eventually(finished, bool, timeout=60))

    # Its timeout failed it; the report names it.
    assert run.status == "failed", run
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n in names if n != hung)
    assert run.error is not None
    assert run.error.startswith(
        f"job upgrade failed on 1 of 5 servers ({hung}): step upgrade/upgrade#{hung} failed: timed out after 10s"
    ), run.error
    (matrix,) = body["matrix"]
    rows = {r["instance"]: (r["status"], r["cells"]) for r in matrix["rows"]}
    assert rows == {**{n: ("ok", ["ok"]) for n in others}, hung: ("timed-out", ["timed-out"])}
    # The run's finished event carries the same matrix.
    (sent,) = event["matrix"]
    assert {r["instance"]: (r["status"], r["cells"]) for r in sent["rows"]} == rows
    assert sent["rows_left_out"] == 0
