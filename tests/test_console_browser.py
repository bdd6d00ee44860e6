"""The web console (/ui) in a real headless Chromium against a real stack (issue 13's acceptance).

One stack for the module: the session's Temporal dev server, a real ``waterflow server`` that
requires an API token (and knows a Temporal UI address to link runs to), and one real agent.
Each test gets a fresh browser context (its own sessionStorage), so logging in is per test: the
first test types the token into the prompt, the others put it where the console keeps it before
the page loads.

Attacks: a workflow name and a step's output made of HTML render as text (no element is built
from them, ``window.__pwned`` stays undefined), every /ui answer carries the CSP, and an inline
script is refused by the browser.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from waterflow_sdk import Client
from waterflow_testing import AgentProcess, ServerProcess, unique_name

TOKEN = "console-" + uuid.uuid4().hex
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
PWN = "<img src=x onerror=window.__pwned=1>"
SCRIPT_NAME = "<script>window.__pwned=1</script>" + PWN
TEMPORAL_UI = "http://127.0.0.1:9/temporal"  # only linked to, never opened
LIVENESS_MS = 60_000  # how long a wait on the page may take before something is stuck
STEP_SUCCEEDED = re.compile(r"^\s*succe(ss|eded)\s*$")  # the API's step status is `success`


@dataclass
class Stack:
    """A token-protected API server and one agent of ``group`` on the session's Temporal."""

    server: ServerProcess
    agent: AgentProcess
    group: str
    workdir: Path

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> Client:
        return Client(self.url, token=TOKEN)

    def submit(self, workflow: str, inputs: dict[str, Any] | None = None) -> str:
        with self.client() as client:
            return client.submit(workflow, inputs=inputs or {}).id


@pytest.fixture(scope="module")
def stack(temporal_dev, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    group = unique_name("console")
    workdir = tmp_path_factory.mktemp("console")
    server = ServerProcess(
        temporal_dev.address,
        workdir=tmp_path_factory.mktemp("server"),
        args=["--task-queue", f"waterflow-server-{uuid.uuid4().hex[:12]}"],
        env={"WATERFLOW_CONSOLE_TEMPORAL_UI_URL": TEMPORAL_UI},
        token=TOKEN,
    )
    agent = AgentProcess(
        unique_name("agent"),
        [group],
        address=temporal_dev.address,
        namespace=temporal_dev.namespace,
        workdir=tmp_path_factory.mktemp("agent"),
    )
    try:
        server.start()
        agent.start()
        server.wait_ready()
        agent.wait_ready()
        yield Stack(server, agent, group, workdir)
    finally:
        agent.stop()
        server.stop()


def open_console(page: Any, stack: Stack, route: str = "#/runs") -> None:
    """Open the console at ``route``, logged in: the token is where the console keeps it."""
    page.add_init_script(f"sessionStorage.setItem('waterflow.token', {json.dumps(TOKEN)})")
    page.goto(f"{stack.url}/ui/{route}")


def by_testid(page: Any, testid: str, **attrs: str) -> Any:
    selector = f'[data-testid="{testid}"]' + "".join(f'[data-{k.replace("_", "-")}="{v}"]' for k, v in attrs.items())
    return page.locator(selector)


def step_status(page: Any, job: str, step: str) -> Any:
    return by_testid(page, "step-row", job=job, step=step).locator('[data-testid="status"]')


def expect_text(locator: Any, text: str | re.Pattern[str]) -> None:
    from playwright.sync_api import expect

    expect(locator).to_have_text(text, timeout=LIVENESS_MS)


def wait_for_file(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.05)
    return path.read_text()


# -- the acceptance list -----------------------------------------------------------------------


def test_the_console_asks_for_the_token_and_logs_in_with_it(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    response = page.goto(f"{stack.url}/ui/")
    assert response is not None and response.status == 200
    form = by_testid(page, "token-form")
    form.wait_for()
    by_testid(page, "token-input").fill("wrong-" + TOKEN)
    by_testid(page, "token-input").press("Enter")
    form.wait_for()  # refused: the prompt stays
    by_testid(page, "token-input").fill(TOKEN)
    by_testid(page, "token-input").press("Enter")
    by_testid(page, "runs-table").wait_for()
    assert page.evaluate("sessionStorage.getItem('waterflow.token')") == TOKEN
    assert not form.is_visible()


def test_submit_from_the_page_then_watch_the_step_run_and_log_live(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    release = stack.workdir / f"release-{uuid.uuid4().hex}"
    workflow = textwrap.dedent(
        f"""\
        name: console-submit
        inputs:
          release: {{type: string, required: true}}
        jobs:
          build:
            runs-on: {stack.group}
            steps:
              - id: wait
                uses: exec/shell
                with:
                  command: |
                    echo "hello from the step"
                    while [ ! -e "$<< inputs.release >>" ]; do sleep 0.1; done
                    echo done
        """
    )
    open_console(page, stack, "#/submit")
    by_testid(page, "yaml-editor").fill(workflow)
    field = by_testid(page, "input-release")
    field.wait_for()
    field.fill(str(release))
    by_testid(page, "submit-button").click()
    page.wait_for_url(re.compile(r".*#/runs/[^/]+$"))
    run_id = page.url.rsplit("#/runs/", 1)[1]

    expect_text(step_status(page, "build", "wait"), "running")
    # The line arrives while the step still runs: it came through the live stream.
    by_testid(page, "logs").locator('[data-testid="log-line"]', has_text="hello from the step").wait_for()
    with stack.client() as client:
        assert client.get(run_id).status == "running"
    release.write_text("go")
    expect_text(step_status(page, "build", "wait"), STEP_SUCCEEDED)
    expect_text(by_testid(page, "run-status"), "succeeded")


def test_a_validation_error_shows_at_its_line_while_typing(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    open_console(page, stack, "#/submit")
    editor = by_testid(page, "yaml-editor")
    editor.wait_for()
    good = f"name: typed\njobs:\n  build:\n    runs-on: {stack.group}\n    steps:\n      - uses: exec/shell\n"
    editor.fill(good + "        with: {command: 'true'}\n")
    editor.press("Control+End")
    # line 8, typed key by key: a key no step has
    editor.press_sequentially("        bogus: 1")
    error = by_testid(page, "validation-error", line="8")
    error.wait_for()
    assert "bogus" in error.inner_text(), page.waterflow_console
    by_testid(page, "error-marker", line="8").wait_for()
    # fixing it clears the error
    editor.fill(good + "        with: {command: 'true'}\n")
    by_testid(page, "validation-error").first.wait_for(state="detached")
    # an error quoting HTML the user typed shows it as text
    editor.press_sequentially(f"        {json.dumps(PWN)}: 1")
    quoted = by_testid(page, "validation-error", line="8")
    quoted.wait_for()
    assert PWN in quoted.inner_text(), quoted.inner_text()
    assert page.locator("#view img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_the_runs_search_finds_a_run_by_part_of_its_id_in_any_case(stack: Stack, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    workflow = textwrap.dedent(
        f"""\
        name: console-search
        jobs:
          quick:
            runs-on: {stack.group}
            steps: [{{id: hi, uses: exec/shell, with: {{command: echo hi}}}}]
        """
    )
    wanted, other = stack.submit(workflow), stack.submit(workflow)
    open_console(page, stack)
    expect(by_testid(page, "run-row", run_id=other)).to_have_count(1, timeout=LIVENESS_MS)
    search = by_testid(page, "runs-search")
    assert search.get_attribute("placeholder") == "Search name or id"
    part = wanted.rsplit("-", 1)[1]  # the id's random part
    search.fill(part.upper())
    expect(by_testid(page, "run-row", run_id=other)).to_have_count(0, timeout=LIVENESS_MS)
    expect(by_testid(page, "run-row")).to_have_count(1, timeout=LIVENESS_MS)
    expect(by_testid(page, "run-row", run_id=wanted)).to_have_count(1)
    assert page.evaluate("location.hash") == f"#/runs?q={part.upper()}"


def test_cancel_a_run_from_its_page(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    started = stack.workdir / f"started-{uuid.uuid4().hex}"
    run_id = stack.submit(
        textwrap.dedent(
            f"""\
            name: console-cancel
            jobs:
              work:
                runs-on: {stack.group}
                steps:
                  - id: long
                    uses: exec/shell
                    with: {{command: 'echo $$ > {started}; sleep 600'}}
            """
        )
    )
    open_console(page, stack, f"#/runs/{run_id}")
    wait_for_file(started)
    expect_text(step_status(page, "work", "long"), "running")
    page.on("dialog", lambda dialog: dialog.accept())  # a confirm() before cancelling is fine
    by_testid(page, "run-cancel").click()
    expect_text(by_testid(page, "run-status"), "cancelled")
    with stack.client() as client:
        run = client.wait(run_id, timeout=60, poll=0.2)
    assert run.status == "cancelled"
    link = by_testid(page, "temporal-link")
    assert link.get_attribute("href") == f"{TEMPORAL_UI}/namespaces/default/workflows/{run_id}/{run.run_id}/history"


def test_approve_a_waiting_gate_with_its_inputs(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    run_id = stack.submit(
        textwrap.dedent(
            f"""\
            name: console-approval
            jobs:
              release:
                runs-on: {stack.group}
                steps:
                  - id: go
                    uses: flow/approval
                    with:
                      timeout: 1h
                      message: {json.dumps("Ship it? " + PWN)}
                      inputs:
                        ticket: {{type: string, required: true}}
                  - id: after
                    uses: exec/shell
                    with: {{command: 'echo ticket=$<< steps.go.outputs.data.ticket >>'}}
            """
        )
    )
    open_console(page, stack, f"#/runs/{run_id}")
    approve = by_testid(page, "approve-button", signal="go")
    approve.wait_for()
    expect_text(by_testid(page, "approval-message"), "Ship it? " + PWN)
    assert page.locator("#view img").count() == 0
    assert by_testid(page, "reject-button", signal="go").is_visible()
    page.locator('[data-testid="approval"] [name="ticket"], [data-testid="input-ticket"]').first.fill("T-42")
    approve.click()
    expect_text(by_testid(page, "run-status"), "succeeded")
    by_testid(page, "logs").locator('[data-testid="log-line"]', has_text="ticket=T-42").wait_for()
    with stack.client() as client:
        run = client.get(run_id)
    gate = next(s for _, s in run.steps() if s.id == "go")
    assert gate.outputs["decision"] == "approved" and gate.outputs["data"] == {"ticket": "T-42"}


def test_the_agents_page_lists_the_agent_and_the_nodes_page_documents_a_node(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    open_console(page, stack, "#/agents")
    row = by_testid(page, "agent-row", agent=stack.agent.name)
    row.wait_for()
    assert stack.group in row.inner_text()
    assert row.get_attribute("data-alive") == "true"

    page.goto(f"{stack.url}/ui/#/nodes")
    by_testid(page, "node-entry", node="exec/shell").wait_for()
    page.goto(f"{stack.url}/ui/#/nodes/exec%2Fshell")
    doc = by_testid(page, "node-doc", node="exec/shell")
    doc.wait_for()
    doc.locator('[data-testid="schema-field"][data-field="command"]').wait_for()


# -- attacks -------------------------------------------------------------------------------------


def test_html_in_a_workflow_name_and_a_step_output_renders_as_text(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    run_id = stack.submit(
        textwrap.dedent(
            f"""\
            name: {json.dumps(SCRIPT_NAME)}
            jobs:
              evil:
                runs-on: {stack.group}
                steps:
                  - id: print
                    uses: exec/shell
                    with: {{command: {json.dumps("echo " + json.dumps(PWN))}}}
            """
        )
    )
    with stack.client() as client:
        run = client.wait(run_id, timeout=120, poll=0.2)
    assert run.succeeded, f"{run.error}\n{stack.agent.output[-3000:]}"

    open_console(page, stack, "#/runs")
    row = by_testid(page, "run-row", run_id=run_id)
    row.wait_for()
    assert SCRIPT_NAME in row.inner_text()

    page.goto(f"{stack.url}/ui/#/runs/{run_id}")
    expect_text(by_testid(page, "run-status"), "succeeded")
    line = by_testid(page, "logs").locator('[data-testid="log-line"]', has_text=PWN)
    line.wait_for()
    assert page.locator("#view img").count() == 0
    assert page.locator("#view script").count() == 0
    assert SCRIPT_NAME in page.locator("#view").inner_text()
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_every_ui_answer_carries_the_csp_and_the_browser_enforces_it(stack: Stack, browser_page: Any) -> None:
    for path in ("/ui", "/ui/", "/ui/app.js", "/ui/style.css"):
        response = httpx.get(stack.url + path, timeout=10)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "access-control-allow-origin" not in response.headers
    for probe in ("/ui/..%2f__init__.py", "/ui/%2e%2e/serving.py", "/ui/pages/..%2f..%2fserving.py"):
        assert httpx.get(stack.url + probe, timeout=10).status_code == 404, probe
    root = httpx.get(stack.url + "/", timeout=10)
    assert root.status_code == 302 and root.headers["location"].endswith("/ui/")

    page = browser_page
    open_console(page, stack)
    by_testid(page, "runs-table").wait_for()
    blocked = page.evaluate(
        """() => new Promise((resolve) => {
            document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective));
            const script = document.createElement('script');
            script.textContent = 'window.__inline = 1';
            document.head.appendChild(script);
            setTimeout(() => resolve('no violation'), 5000);
        })"""
    )
    assert blocked.startswith("script-src"), blocked
    assert page.evaluate("typeof window.__inline") == "undefined"
