"""The web console against hostile sizes and names (issue 13's security review), in real Chromium.

Each attack is checked by what it broke, never by how long it took: a field named like a form's
own property (``elements``, ``querySelectorAll``, ``firstChild``) or ``__proto__`` still reaches
the server; Enter in an approval field does not answer the gate; a 20,000-line snapshot renders at
most 5,000 lines around its failing line; a burst of 781 log lines is measured a few times per
frame, not once per line; a 5,000-server fan-out is recoloured without a search per node; a node
schema with a 200,000-value enum still documents; ``#/runs/..`` never becomes ``GET /v1/``.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: the console stack is a sibling module
import test_console_browser as console
from test_console_browser import Stack, by_testid, expect_text, open_console

stack = console.stack  # the fixture: a token-protected server and one agent, for this module

MAX_SHOWN_YAML = 5000  # pages/yaml.js
MAX_LOG_LINES = 5000  # pages/run.js
PADDING = 20_000
JOBS, STEPS, LINES = 2, 20, 20  # 781 log lines (a finished step's log keeps its last 20)

# Counts how often the log panel is measured (each read of scrollHeight forces a layout).
COUNT_LOG_MEASURES = """
(() => {
  const real = Object.getOwnPropertyDescriptor(Element.prototype, "scrollHeight");
  window.__logMeasures = 0;
  Object.defineProperty(Element.prototype, "scrollHeight", {
    configurable: true,
    get() {
      if (this.dataset && this.dataset.testid === "logs") window.__logMeasures += 1;
      return real.get.call(this);
    },
  });
})();
"""


def test_input_names_that_are_form_properties_or_proto_reach_the_server(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    values = {
        "elements": "v-elements",
        "querySelectorAll": "v-qsa",
        "firstChild": "v-first",
        "a": "v-a",
        "wf-input-a": "v-wf-input-a",
        "__proto__": "v-proto",
    }
    declared = "".join(f"  {json.dumps(name)}: {{type: string, required: true}}\n" for name in values)
    workflow = (
        "name: hostile-inputs\ninputs:\n" + declared + textwrap.dedent(
            f"""\
            jobs:
              j:
                runs-on: {stack.group}
                steps:
                  - uses: exec/shell
                    with: {{command: 'true'}}
            """
        )
    )
    open_console(page, stack, "#/submit")
    by_testid(page, "yaml-editor").fill(workflow)
    for name, value in values.items():
        by_testid(page, f"input-{name}").fill(value)
    ids = page.locator('[data-testid="inputs-form"] [data-testid^="input-"]').evaluate_all("els => els.map(e => e.id)")
    assert ids == [f"wf-input-{i}" for i in range(len(values))]
    by_testid(page, "input-a").press("Enter")  # Enter in a field submits, as in a form
    page.wait_for_url(re.compile(r".*#/runs/[^/]+$"))
    run_id = page.url.rsplit("#/runs/", 1)[1]
    with stack.client() as client:
        assert client.get(run_id).inputs == values
    # The page still works after all this: the kept draft and values bring the form back.
    page.goto(f"{stack.url}/ui/#/submit")
    assert by_testid(page, "input-firstChild").input_value() == "v-first"
    assert by_testid(page, "input-__proto__").input_value() == "v-proto"
    assert not [m for m in page.waterflow_console if m.startswith("pageerror")], page.waterflow_console


def test_enter_in_an_approval_field_does_not_answer_and_odd_field_names_arrive(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    run_id = stack.submit(
        textwrap.dedent(
            f"""\
            name: hostile-gate
            jobs:
              release:
                runs-on: {stack.group}
                steps:
                  - id: go
                    uses: flow/approval
                    with:
                      timeout: 1h
                      inputs:
                        appendChild: {{type: string, required: true}}
                        "__proto__": {{type: string, required: true}}
            """
        )
    )
    open_console(page, stack, f"#/runs/{run_id}")
    approve = by_testid(page, "approve-button", signal="go")
    approve.wait_for()
    field = page.locator('[data-testid="approval"] [data-testid="input-appendChild"]')
    field.fill("x-append")
    field.press("Enter")
    # answer() disables both buttons at once when it starts: they are still enabled.
    assert approve.is_enabled() and by_testid(page, "reject-button", signal="go").is_enabled()
    assert by_testid(page, "approval-accepted").count() == 0
    page.locator('[data-testid="approval"] [data-testid="input-__proto__"]').fill("x-proto")
    approve.click()
    expect_text(by_testid(page, "run-status"), "succeeded")
    with stack.client() as client:
        run = client.get(run_id)
    gate = next(s for _, s in run.steps() if s.id == "go")
    assert gate.outputs["decision"] == "approved"
    assert gate.outputs["data"] == {"appendChild": "x-append", "__proto__": "x-proto"}


def big_workflow(group: str) -> tuple[str, int]:
    """PADDING comment lines, JOBS x STEPS steps of LINES log lines each (the last step of the first
    job fails), more comment lines. Returns the text and the failing step's line."""
    out = [f"# padding line {n}" for n in range(PADDING)]
    out += ["name: hostile-big", "jobs:"]
    failing = 0
    for j in range(JOBS):
        out += [f"  noisy{j}:", f"    runs-on: {group}", "    steps:"]
        for s in range(STEPS):
            out += [f"      - id: s{s}", "        uses: exec/shell"]
            if j == 0 and s == STEPS - 1:
                failing = len(out) - 1
                out += ["        with: {command: 'echo failing; exit 3'}"]
            else:
                out += [f"        with: {{command: \"seq -f 'burst {j}.{s} line %02g' 1 {LINES}\"}}"]
    out += [f"# trailing line {n}" for n in range(MAX_SHOWN_YAML)]  # the window is centred, not clamped
    return "\n".join(out) + "\n", failing


def test_a_huge_snapshot_and_a_log_burst_keep_the_run_page_bounded(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    source, failing_line = big_workflow(stack.group)
    run_id = stack.submit(source)
    with stack.client() as client:
        run = client.wait(run_id, timeout=120, poll=0.2)
    assert run.status == "failed", run.error

    page.add_init_script(COUNT_LOG_MEASURES)
    open_console(page, stack, f"#/runs/{run_id}")
    expect_text(by_testid(page, "run-status"), "failed")

    # The snapshot: the window around the failing line, with more on demand.
    error_line = by_testid(page, "yaml-error-line", line=str(failing_line))
    error_line.wait_for()
    lines = page.locator('[data-testid="yaml"] > li')
    assert lines.count() == MAX_SHOWN_YAML
    more = by_testid(page, "yaml-more-before")
    assert more.is_visible() and f"{failing_line - MAX_SHOWN_YAML // 2 - 1} earlier line(s)" in more.inner_text()
    more.click()
    assert lines.count() == 2 * MAX_SHOWN_YAML
    assert error_line.count() == 1

    # The logs: every step's lines arrived in one burst (the run has ended: the stream replays it
    # at once), and the panel was measured per frame, not per line.
    by_testid(page, "logs-end").wait_for()
    log_lines = by_testid(page, "logs").locator('[data-testid="log-line"][data-kind="log"]')
    count = log_lines.count()
    assert count == (JOBS * STEPS - 1) * LINES + 1, count  # the failing step says one line
    last = f"burst {JOBS - 1}.{STEPS - 1} line {LINES:02d}"
    assert by_testid(page, "logs").locator('[data-testid="log-line"]', has_text=last).count() == 1
    measures = page.evaluate("window.__logMeasures")
    print(f"log panel measured {measures} times for {count} lines")
    assert measures < count / 3, (measures, count)  # once per line (the old code) is >= count


def test_a_big_fan_out_is_recoloured_from_a_map(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    open_console(page, stack, "#/agents")
    by_testid(page, "agents-table").wait_for()
    result = page.evaluate(
        """async () => {
            const { createDag } = await import("/ui/pages/dag.js");
            const graph = [{ id: "f", name: "f", needs: [], fan_out: true }];
            const jobs = [{ id: "f", status: "running", steps: [] }];
            for (let i = 0; i < 5000; i++) {
                jobs.push({ id: "f", instance: `srv${i}`, status: i === 4321 ? "failure" : "running", steps: [] });
            }
            const dag = createDag({ onSelect() {} });
            document.body.appendChild(dag.el);
            dag.update({ graph, jobs }, null);
            const find = Array.prototype.find;
            let finds = 0;
            Array.prototype.find = function (...args) { finds += 1; return find.apply(this, args); };
            try { dag.update({ graph, jobs }, null); } finally { Array.prototype.find = find; }
            const node = dag.el.querySelector('[data-server="srv4321"]');
            const nodes = dag.el.querySelectorAll(".dag-node").length;
            return { finds, status: node.getAttribute("data-status"), nodes };
        }"""
    )
    assert result == {"finds": 0, "status": "failure", "nodes": 5000}, result


def test_a_node_schema_with_a_huge_enum_still_documents(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    open_console(page, stack, "#/agents")
    by_testid(page, "agents-table").wait_for()
    # A plugin's schema is its author's: the catalog entry is fed to the page module as the API would.
    result = page.evaluate(
        """async () => {
            const { mount } = await import("/ui/pages/nodes.js");
            const values = Array.from({ length: 200000 }, (_, i) => `v${i}`);
            const node = {
                type: "evil/enum", version: "1.0.0", description: "huge enum", groups: ["local"],
                inputs_schema: { type: "object", required: ["mode", "__proto__"],
                    properties: { mode: { type: "string", enum: values }, ["__proto__"]: { type: "string" } } },
                outputs_schema: null,
            };
            const root = document.createElement("div");
            document.body.appendChild(root);
            const ctx = { api: { get: async () => ({ nodes: [node] }) } };
            await mount(root, { id: "evil/enum", query: new URLSearchParams() }, ctx);
            const { usageExample } = await import("/ui/pages/nodes.js");
            return {
                documented: !!root.querySelector('[data-testid="node-doc"]'),
                mode: !!root.querySelector('[data-testid="schema-field"][data-field="mode"]'),
                example: usageExample(node),
            };
        }"""
    )
    assert result["documented"] and result["mode"], result
    assert "__proto__" in result["example"], result["example"]


def test_a_run_id_the_server_refuses_is_not_requested(stack: Stack, browser_page: Any) -> None:
    page = browser_page
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    open_console(page, stack, "#/runs/..")
    by_testid(page, "page-error").wait_for()
    assert not [url for url in requests if re.search(r"/v1/?$|/v1/workflows/\.\.", url)], requests
