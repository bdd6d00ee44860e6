// The run page (#/runs/<id>): header and actions, approval gates, the job DAG, the steps table,
// compensations, the YAML snapshot with the failing line marked, and the live log tail.
//
// Everything shown comes from users or step output: it goes into text nodes (h()/s() children,
// textContent), never markup. The page re-reads the run every POLL_MS while it is not finished
// (and soon after each step event of the log stream) and updates in place: rows are keyed, open
// <details> stay open, the approval forms keep what was typed, the log panel only appends.

import { ApiError } from "../api.js";
import { clear, fmtDuration, fmtTime, h, secondsBetween, statusBadge } from "../dom.js";
import { createDag, shownStatus } from "./dag.js";
import { createYaml } from "./yaml.js";

const POLL_MS = 1500;
const SOON_MS = 250;
const MAX_LOG_LINES = 5000;
const FINISHED = new Set(["succeeded", "failed", "cancelled", "timed_out"]);

function runLink(id) {
  return h("a", { href: `#/runs/${encodeURIComponent(id)}`, class: "mono" }, id);
}

function json(value) {
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

/** An ApiError (or anything thrown) as a message plus the listed problems. */
function errorBox(exc, testid) {
  const body = exc instanceof ApiError ? exc.body : null;
  const prefix = exc instanceof ApiError && exc.status ? `${exc.status}: ` : "";
  const message = exc && exc.message ? exc.message : String(exc);
  // One problem is the message itself; several are listed under it.
  const items = body && body.errors && body.errors.length > 1
    ? h("ul", {}, body.errors.map((item) => h("li", {}, `${item.path ? `${item.path}: ` : ""}${item.message}`)))
    : null;
  return h("div", { class: "error-box", testid, role: "alert" }, `${prefix}${message}`, items);
}

/** A status badge inside a log line (not a `status` test id: those belong to the run and its steps). */
function logBadge(status) {
  const badge = statusBadge(status || "unknown");
  badge.removeAttribute("data-testid");
  return badge;
}

function duration(start, end, running) {
  if (!start) return "—";
  if (!end && !running) return "—";
  return fmtDuration(secondsBetween(start, end));
}

/** `<temporal_ui_url>/namespaces/<ns>/workflows/<id>/<run_id>/history`, only for http(s) bases. */
export function temporalUrl(base, namespace, id, runId) {
  if (typeof base !== "string" || !base) return null;
  let parsed;
  try {
    parsed = new URL(base, location.href);
  } catch {
    return null;
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return null;
  const root = `${parsed.origin}${parsed.pathname}`.replace(/\/+$/, ""); // no query, fragment or credentials
  const path = `/namespaces/${encodeURIComponent(namespace || "default")}/workflows/${encodeURIComponent(id)}`;
  return runId ? `${root}${path}/${encodeURIComponent(runId)}/history` : `${root}${path}`;
}

/** Each step of the progress tree with its job entry and its log path `job/step[#instance]`. */
function stepsOf(detail) {
  const out = [];
  for (const job of detail.jobs || []) {
    for (const step of job.steps || []) {
      const server = step.instance || job.instance || null;
      const path = `${job.id}/${step.id}${server ? `#${server}` : ""}`;
      out.push({ job, step, server, path });
    }
  }
  return out;
}

function lineOf(graphById, jobId, stepId) {
  const job = graphById.get(jobId);
  if (!job) return null;
  let id = String(stepId || "").replace(/\.compensate$/, "");
  // A nested flow step `parent/label/child` is found at its outermost step.
  while (id) {
    if (Object.prototype.hasOwnProperty.call(job.step_lines || {}, id)) return job.step_lines[id];
    const cut = id.lastIndexOf("/");
    id = cut < 0 ? "" : id.slice(0, cut);
  }
  return Number.isInteger(job.line) ? job.line : null;
}

/** The source lines of what failed: failed steps, else failed jobs that have no failed step. */
function failingLines(detail) {
  const graphById = new Map((detail.graph || []).map((job) => [job.id, job]));
  const lines = new Set();
  const jobsWithFailedStep = new Set();
  for (const { job, step } of stepsOf(detail)) {
    if (step.status !== "failure") continue;
    jobsWithFailedStep.add(job.id);
    const line = lineOf(graphById, job.id, step.id);
    if (line) lines.add(line);
  }
  for (const job of detail.jobs || []) {
    if (job.status === "failure" && job.error && !jobsWithFailedStep.has(job.id)) {
      const line = graphById.get(job.id) && graphById.get(job.id).line;
      if (Number.isInteger(line)) lines.add(line);
    }
  }
  return [...lines];
}

function matches(selection, job, server) {
  if (!selection) return true;
  if (selection.job !== job) return false;
  return !selection.server || selection.server === server;
}

// -- approval gates ----------------------------------------------------------------------------

let gateFields = 0;

function fieldInput(name, spec) {
  const type = spec.type || "string";
  // No name= and no id from the input's name: in a <form> either would shadow the form's own
  // properties (a field named `appendChild` breaks building the form).
  const attrs = { id: `gate-field-${++gateFields}`, testid: `input-${name}`, "data-name": name, "data-type": type };
  if (Array.isArray(spec.options) && spec.options.length) {
    return h("select", attrs,
      spec.required ? null : h("option", { value: "" }, "—"),
      spec.options.map((option) => h("option", { value: String(option), selected: String(option) === String(spec.default) }, String(option))));
  }
  if (type === "boolean") {
    return h("select", attrs,
      h("option", { value: "" }, "—"),
      h("option", { value: "true", selected: spec.default === true || spec.default === "true" }, "true"),
      h("option", { value: "false", selected: spec.default === false || spec.default === "false" }, "false"));
  }
  if (type === "object" || type === "array") {
    return h("textarea", { ...attrs, rows: 3, placeholder: type === "object" ? "{ JSON }" : "[ JSON ]",
      value: spec.default === undefined || spec.default === null ? "" : JSON.stringify(spec.default) });
  }
  return h("input", {
    ...attrs,
    type: "text",
    inputmode: type === "number" ? "decimal" : null,
    value: spec.default === undefined || spec.default === null ? "" : String(spec.default),
  });
}

/** The form's values as the signal's `data` (empty fields left out: the gate applies defaults). */
function formData(fields) {
  const data = Object.create(null); // `__proto__` is a field name like any other
  for (const [name, input] of fields) {
    const raw = input.value;
    if (raw === "") continue;
    const type = input.dataset.type;
    if (type === "boolean") data[name] = raw === "true";
    else if (type === "number" && raw.trim() !== "" && !Number.isNaN(Number(raw))) data[name] = Number(raw);
    else if (type === "object" || type === "array") {
      try {
        data[name] = JSON.parse(raw);
      } catch {
        data[name] = raw; // the API names the field in its 422
      }
    } else data[name] = raw;
  }
  return data;
}

function gateCard(gate, base, api, refresh) {
  const { signal, steps, waiting } = gate;
  const fields = [];
  const specs = waiting.inputs || {};
  const rows = Object.keys(specs).map((name) => {
    const spec = specs[name] || {};
    const input = fieldInput(name, spec);
    fields.push([name, input]);
    return h("div", { class: "gate-field" },
      h("label", { for: input.id }, name, spec.required ? " *" : "", h("span", { class: "muted" }, ` (${spec.type || "string"})`)),
      input,
      spec.description ? h("div", { class: "muted small" }, spec.description) : null);
  });
  const result = h("div", { class: "gate-result" });
  const refused = h("div", { class: "gate-refused" });
  const approve = h("button", { type: "button", class: "primary", testid: "approve-button", "data-signal": signal }, "Approve");
  const reject = h("button", { type: "button", class: "danger", testid: "reject-button", "data-signal": signal }, "Reject");
  async function answer(decision) {
    approve.disabled = true;
    reject.disabled = true;
    clear(result);
    try {
      const body = { decision, data: formData(fields) };
      const accepted = await api.post(`${base}/signals/${encodeURIComponent(signal)}`, body);
      result.appendChild(h("div", { class: "ok-box", testid: "approval-accepted" },
        `${decision === "approve" ? "Approved" : "Rejected"}${accepted && accepted.by ? ` as ${accepted.by}` : ""}; the run carries on.`));
      refresh();
    } catch (exc) {
      result.appendChild(errorBox(exc, "approval-error"));
      approve.disabled = false;
      reject.disabled = false;
    }
  }
  approve.onclick = () => answer("approve");
  reject.onclick = () => answer("reject");
  // Enter in a field must not answer the gate: only the buttons approve or reject.
  const form = h("form", { class: "gate-form", testid: "approval-form", onsubmit: (event) => event.preventDefault() },
    rows, h("div", { class: "actions left" }, approve, reject));
  const card = h("div", { class: "gate", testid: "approval", "data-signal": signal },
    h("div", { class: "gate-head" },
      h("span", { class: "status status-waiting" }, "waiting"), " ",
      "signal ", h("code", {}, signal), " · ", steps.join(", ")),
    waiting.message ? h("p", { class: "gate-message", testid: "approval-message" }, waiting.message) : null,
    h("div", { class: "muted small" },
      waiting.approvers && waiting.approvers.length ? `approvers: ${waiting.approvers.join(", ")}` : "any operator token may answer",
      waiting.deadline ? ` · fails unanswered at ${fmtTime(waiting.deadline)}` : ""),
    form, result, refused);
  return {
    el: card,
    /** What was typed, by field name (kept when the card is rebuilt). */
    values() {
      return new Map(fields.map(([name, input]) => [name, input.value]));
    },
    restore(values) {
      for (const [name, input] of fields) if (values.has(name)) input.value = values.get(name);
    },
    update(current) {
      clear(refused);
      const list = (current.waiting && current.waiting.refused) || [];
      if (list.length) {
        refused.appendChild(h("div", { class: "muted small" }, "Ignored answers:"));
        refused.appendChild(h("ul", { testid: "approval-refused" }, list.map((why) => h("li", {}, why))));
      }
    },
  };
}

/** The waiting gates, one per signal (one signal answers every gate waiting for it). */
function gatesOf(detail) {
  const bySignal = new Map();
  for (const { step, path } of stepsOf(detail)) {
    if (!step.waiting || step.status !== "running") continue;
    const signal = step.waiting.signal;
    if (!bySignal.has(signal)) bySignal.set(signal, { signal, steps: [], waiting: step.waiting });
    bySignal.get(signal).steps.push(path);
  }
  return [...bySignal.values()];
}

// -- the page ----------------------------------------------------------------------------------

export async function mount(root, params, ctx) {
  const api = ctx.api;
  const id = params.id;
  const base = `/v1/workflows/${encodeURIComponent(id)}`;
  // The page's own container, attached before the first await: if the user navigates away
  // meanwhile, the router empties the view and this container is detached, so nothing is shown
  // in (or appended below) the next page.
  const page = h("div", { class: "run-page" }, h("div", { class: "muted" }, "Loading the run…"));
  root.appendChild(page);
  let detail = await api.get(base);
  if (!page.isConnected) return () => {};
  clear(page);
  let closed = false;
  let timer = null;
  let fetching = false;
  let selection = null;
  const aborter = new AbortController();

  // Header and actions.
  const title = h("h1", { class: "run-title", testid: "run-name" });
  const badgeHolder = h("span", { class: "run-badge" });
  const meta = h("div", { class: "run-meta", testid: "run-meta" });
  const errorHolder = h("div", {});
  const lockHolder = h("div", {});
  const refreshError = h("div", {});
  const cancelButton = h("button", { type: "button", class: "danger", testid: "run-cancel" }, "Cancel run");
  const cancelResult = h("span", { class: "cancel-result" });
  const temporalHolder = h("span", {});
  cancelButton.onclick = async () => {
    if (!window.confirm(`Cancel run ${id}? Running steps are stopped and completed steps compensated.`)) return;
    cancelButton.disabled = true;
    clear(cancelResult);
    try {
      await api.del(base);
      cancelResult.appendChild(h("span", { class: "muted", testid: "run-cancel-requested" }, "cancellation requested"));
      soon();
    } catch (exc) {
      cancelResult.appendChild(errorBox(exc, "run-cancel-error"));
      cancelButton.disabled = FINISHED.has(detail.status);
    }
  };

  const inputs = detail.inputs || {};
  const inputRows = Object.keys(inputs).map((key) =>
    h("tr", {}, h("th", {}, key), h("td", {}, h("code", { class: "pre" }, json(inputs[key])))));
  const inputsBlock = inputRows.length
    ? h("details", { class: "run-inputs", testid: "run-inputs", open: inputRows.length <= 8 }, h("summary", {}, `Inputs (${inputRows.length})`),
      h("table", { class: "data compact" }, h("tbody", {}, inputRows)))
    : null;

  // Approvals.
  const approvals = h("section", { class: "approvals", testid: "approvals" });
  let gateKey = "";
  let gateCards = new Map();

  // DAG.
  const dag = createDag({ onSelect: (picked) => select(picked) });
  const selectionNote = h("div", { class: "selection-note", testid: "steps-filter" });

  // Steps.
  const stepsBody = h("tbody", {});
  const stepsTable = h("table", { class: "data steps", testid: "steps" },
    h("thead", {}, h("tr", {}, ["Job", "Server", "Step", "Node", "Status", "Attempts", "Started", "Duration", "Outputs"]
      .map((label) => h("th", {}, label)))),
    stepsBody);
  const rows = new Map(); // key -> {tr, sig, open: {outputs, attempts}}

  // Compensations.
  const compensations = h("section", { class: "compensations-section" });
  let compensationsSig = "";

  // YAML.
  const yamlPanel = h("div", { class: "panel yaml-panel", testid: "yaml-panel" }, h("div", { class: "muted" }, "Loading the workflow…"));
  let yaml = null;

  // Logs.
  const logList = h("div", { class: "log-lines" });
  const logPanel = h("div", { class: "panel logs", testid: "logs" }, logList);
  const logFilter = h("select", { testid: "logs-filter", "aria-label": "show the lines of" }, h("option", { value: "" }, "all steps"));
  const autoScroll = h("input", { type: "checkbox", checked: true, testid: "logs-autoscroll" });
  const logStatus = h("span", { class: "muted small", testid: "logs-state" }, "connecting…");
  const knownFilterOptions = new Set();
  let logFilterValue = "";
  let logServer = null;
  let pathIndex = new Map(); // log path -> {job, stepId, server}
  logFilter.onchange = () => {
    logFilterValue = logFilter.value;
    logServer = null;
    applyLogFilter();
  };

  page.append(
    h("div", { class: "run-header" },
      h("div", { class: "run-heading" }, title, badgeHolder),
      h("div", { class: "run-id" }, h("span", { class: "muted" }, "id "), h("code", { testid: "run-id" }, id)),
      meta,
      h("div", { class: "run-actions" }, cancelButton, temporalHolder, cancelResult),
      errorHolder, lockHolder, refreshError, inputsBlock),
    approvals,
    h("section", {}, h("h2", {}, "Jobs"), h("div", { class: "dag-scroll" }, dag.el)),
    h("section", {}, h("h2", {}, "Steps"), selectionNote, h("div", { class: "table-scroll" }, stepsTable)),
    compensations,
    h("div", { class: "run-panels" },
      h("section", {}, h("h2", {}, "Workflow"), yamlPanel),
      h("section", {},
        h("h2", {}, "Logs"),
        h("div", { class: "toolbar" }, logFilter,
          h("label", { class: "small" }, autoScroll, " follow"), logStatus),
        logPanel)));

  // Where the Temporal UI shows this run (only when the server knows its URL).
  if (typeof ctx.info === "function") {
    ctx.info().then((info) => {
      if (closed || !info) return;
      const href = temporalUrl(info.temporal_ui_url, info.namespace, id, detail.run_id);
      if (href) {
        temporalHolder.appendChild(h("a", { href, testid: "temporal-link", target: "_blank", rel: "noopener noreferrer" }, "Open in Temporal UI"));
      }
    }).catch(() => {});
  }

  function renderHeader() {
    clear(title).appendChild(document.createTextNode(detail.name || id));
    const badge = statusBadge(detail.status);
    badge.setAttribute("data-testid", "run-status");
    clear(badgeHolder).appendChild(badge);
    const running = !FINISHED.has(detail.status);
    const parts = [
      h("span", {}, h("span", { class: "muted" }, "started "), fmtTime(detail.started_at)),
      h("span", {}, h("span", { class: "muted" }, "finished "), fmtTime(detail.finished_at)),
      h("span", { testid: "run-duration" }, h("span", { class: "muted" }, "duration "), duration(detail.started_at, detail.finished_at, running)),
      detail.check ? h("span", { class: "tag" }, "check run") : null,
      detail.rerun_of ? h("span", {}, h("span", { class: "muted" }, "rerun of "), runLink(detail.rerun_of)) : null,
      detail.reruns && detail.reruns.length
        ? h("span", {}, h("span", { class: "muted" }, "reruns "), detail.reruns.map((rerun, i) => [i ? ", " : "", runLink(rerun)]))
        : null,
      h("span", { class: "muted" }, `Temporal: ${detail.temporal_status || "?"}`),
    ];
    clear(meta);
    for (const part of parts) if (part) meta.appendChild(part);
    cancelButton.disabled = !running;
    clear(errorHolder);
    if (detail.error) errorHolder.appendChild(h("div", { class: "error-box", testid: "run-error" }, detail.error));
    clear(lockHolder);
    const lock = detail.waiting_for_lock;
    if (lock) {
      lockHolder.appendChild(h("div", { class: "note", testid: "run-lock" },
        `waiting for the concurrency lock ${lock.key}${lock.holder ? ` (held by ${lock.holder})` : ""}`,
        lock.since ? ` since ${fmtTime(lock.since)}` : ""));
    }
  }

  function renderApprovals() {
    const gates = gatesOf(detail);
    const key = JSON.stringify(gates.map((gate) => [gate.signal, gate.steps, gate.waiting.message, gate.waiting.inputs, gate.waiting.approvers, gate.waiting.deadline]));
    if (key !== gateKey) {
      gateKey = key;
      const typed = new Map([...gateCards].map(([signal, card]) => [signal, card.values()]));
      clear(approvals);
      gateCards = new Map();
      if (gates.length) approvals.appendChild(h("h2", {}, "Waiting for approval"));
      for (const gate of gates) {
        const card = gateCard(gate, base, api, soon);
        if (typed.has(gate.signal)) card.restore(typed.get(gate.signal));
        gateCards.set(gate.signal, card);
        approvals.appendChild(card.el);
      }
    }
    for (const gate of gates) gateCards.get(gate.signal).update(gate);
  }

  function statusCell(step) {
    const cell = h("td", { class: "step-status" }, statusBadge(step.status));
    if (step.conclusion && step.conclusion !== step.status) {
      cell.appendChild(h("span", { class: "muted small" }, ` → ${step.conclusion}`));
    }
    if (step.waiting && step.status === "running") {
      cell.appendChild(h("div", { class: "step-waiting", testid: "step-waiting" },
        h("span", { class: "status status-waiting" }, "waiting"),
        ` for signal ${step.waiting.signal}`, step.waiting.message ? `: ${step.waiting.message}` : ""));
    }
    if (step.timed_out) cell.appendChild(h("span", { class: "tag" }, "timed out"));
    if (step.reason) cell.appendChild(h("div", { class: "muted small" }, step.reason));
    if (step.succeeded_in) cell.appendChild(h("div", { class: "muted small" }, "succeeded in ", runLink(step.succeeded_in)));
    if (step.error) cell.appendChild(h("div", { class: "step-error", testid: "step-error" }, step.error));
    return cell;
  }

  function detailsBlock(state, which, testid, summary, content) {
    const block = h("details", { testid }, h("summary", {}, summary), content);
    block.open = !!state.open[which];
    block.ontoggle = () => { state.open[which] = block.open; };
    return block;
  }

  function stepCells(job, step, server, state) {
    const running = step.status === "running";
    const outputs = step.outputs || {};
    const outputKeys = Object.keys(outputs);
    const attemptErrors = step.attempt_errors || [];
    return [
      h("td", {}, job.name || job.id),
      h("td", {}, server || "—", step.agent && step.agent !== server ? h("div", { class: "muted small" }, `agent ${step.agent}`) : null),
      h("td", {}, step.name || step.id, step.name && step.name !== step.id ? h("div", { class: "muted small mono" }, step.id) : null),
      h("td", {}, step.uses ? h("code", {}, step.uses) : "—"),
      statusCell(step),
      h("td", { class: "nowrap" }, step.attempt ? String(step.attempt) : "—",
        attemptErrors.length
          ? detailsBlock(state, "attempts", "attempt-errors", `${attemptErrors.length} earlier error(s)`,
            h("ol", { class: "attempt-errors" }, attemptErrors.map((message) => h("li", {}, message))))
          : null),
      h("td", { class: "nowrap" }, fmtTime(step.started_at)),
      h("td", { class: "nowrap" }, duration(step.started_at, step.finished_at, running)),
      h("td", {}, outputKeys.length
        ? detailsBlock(state, "outputs", "step-outputs", `${outputKeys.length} output(s)`, h("pre", { class: "outputs" }, json(outputs)))
        : "—"),
    ];
  }

  function renderSteps() {
    const seen = new Set();
    for (const { job, step, server } of stepsOf(detail)) {
      const key = `${job.id}\u0000${server || ""}\u0000${step.id}`;
      seen.add(key);
      let row = rows.get(key);
      if (!row) {
        const tr = h("tr", { class: "step-row clickable", testid: "step-row", "data-job": job.id, "data-step": step.id, "data-server": server });
        tr.onclick = (event) => {
          if (event.target.closest("details, a")) return;
          const line = lineOf(new Map((detail.graph || []).map((g) => [g.id, g])), job.id, step.id);
          if (yaml && line) yaml.focus(line);
        };
        row = { tr, sig: "", open: {} };
        rows.set(key, row);
      }
      const sig = JSON.stringify([job.name, step]);
      if (sig !== row.sig || step.status === "running") {
        row.sig = sig;
        clear(row.tr);
        for (const cell of stepCells(job, step, server, row)) row.tr.appendChild(cell);
        row.tr.dataset.status = step.status;
      }
      row.tr.hidden = !matches(selection, job.id, server);
      stepsBody.appendChild(row.tr); // keeps the tree's order; moving a node keeps its state
    }
    for (const [key, row] of rows) {
      if (!seen.has(key)) {
        row.tr.remove();
        rows.delete(key);
      }
    }
    clear(selectionNote);
    if (selection) {
      const clearButton = h("button", { type: "button", class: "link-button", testid: "steps-filter-clear" }, "show all");
      clearButton.onclick = () => select(null);
      selectionNote.appendChild(h("span", {}, `Showing job ${selection.job}${selection.server ? ` on ${selection.server}` : ""} · `));
      selectionNote.appendChild(clearButton);
    }
  }

  function renderCompensations() {
    const list = detail.compensations || [];
    const sig = JSON.stringify(list);
    if (sig === compensationsSig) return;
    compensationsSig = sig;
    clear(compensations);
    if (!list.length) return;
    compensations.appendChild(h("h2", {}, "Compensations"));
    compensations.appendChild(h("table", { class: "data", testid: "compensations" },
      h("thead", {}, h("tr", {}, ["Job", "Server", "Step", "Node", "Status", "Agent", "Started", "Duration"].map((label) => h("th", {}, label)))),
      h("tbody", {}, list.map((step) => h("tr", { testid: "compensation-row", "data-job": step.job, "data-step": step.id, "data-server": step.instance },
        h("td", {}, step.job || "—"),
        h("td", {}, step.instance || "—"),
        h("td", {}, step.name || step.id),
        h("td", {}, step.uses ? h("code", {}, step.uses) : "—"),
        h("td", {}, statusBadge(step.status), step.error ? h("div", { class: "step-error" }, step.error) : null),
        h("td", {}, step.agent || "—"),
        h("td", { class: "nowrap" }, fmtTime(step.started_at)),
        h("td", { class: "nowrap" }, duration(step.started_at, step.finished_at, step.status === "running")))))));
  }

  function renderLogFilterOptions() {
    const add = (value, label) => {
      if (knownFilterOptions.has(value)) return;
      knownFilterOptions.add(value);
      logFilter.appendChild(h("option", { value }, label));
    };
    for (const job of detail.graph && detail.graph.length ? detail.graph : detail.jobs || []) add(`j:${job.id}`, `job ${job.id}`);
    for (const { job, step } of stepsOf(detail)) add(`s:${job.id}/${step.id}`, `step ${job.id}/${step.id}`);
  }

  function render() {
    pathIndex = new Map(stepsOf(detail).map((item) => [item.path, { job: item.job.id, stepId: item.step.id, server: item.server }]));
    renderHeader();
    renderApprovals();
    dag.update(detail, selection);
    renderSteps();
    renderCompensations();
    renderLogFilterOptions();
    if (yaml) yaml.mark(failingLines(detail));
  }

  function select(picked) {
    selection = picked;
    dag.update(detail, selection);
    renderSteps();
    if (picked) {
      logFilterValue = `j:${picked.job}`;
      logServer = picked.server || null;
      if (!knownFilterOptions.has(logFilterValue)) renderLogFilterOptions();
      logFilter.value = logFilterValue;
      const graph = (detail.graph || []).find((job) => job.id === picked.job);
      if (yaml && graph && graph.line) yaml.focus(graph.line);
      stepsTable.scrollIntoView({ block: "nearest", behavior: "smooth" });
    } else {
      logFilterValue = "";
      logServer = null;
      logFilter.value = "";
      if (yaml) yaml.focus(null);
    }
    applyLogFilter();
  }

  // -- live updates ----------------------------------------------------------------------------

  async function refresh() {
    if (closed || fetching) return;
    fetching = true;
    try {
      const fresh = await api.get(base, null, { signal: aborter.signal });
      if (closed) return;
      detail = fresh;
      clear(refreshError);
      render();
    } catch (exc) {
      if (!closed) clear(refreshError).appendChild(errorBox(exc, "refresh-error"));
    } finally {
      fetching = false;
    }
    schedule(POLL_MS);
  }

  function schedule(ms) {
    if (closed) return;
    clearTimeout(timer);
    timer = null;
    if (FINISHED.has(detail.status)) return;
    timer = setTimeout(refresh, ms);
  }

  function soon() {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(refresh, SOON_MS);
  }

  // -- logs ------------------------------------------------------------------------------------

  function lineMatches(el) {
    if (!logFilterValue) return true;
    const job = el.dataset.job;
    if (logFilterValue.startsWith("j:")) {
      if (job !== logFilterValue.slice(2)) return false;
      return !logServer || el.dataset.server === logServer;
    }
    return `${job}/${el.dataset.stepId}` === logFilterValue.slice(2);
  }

  function applyLogFilter() {
    for (const el of logList.children) el.hidden = !lineMatches(el);
  }

  function where(path) {
    const known = pathIndex.get(path);
    if (known) return known;
    // Not in the tree yet: `job/step[#instance]`.
    const hash = path.indexOf("#");
    const bare = hash < 0 ? path : path.slice(0, hash);
    const slash = bare.indexOf("/");
    return {
      job: slash < 0 ? bare : bare.slice(0, slash),
      stepId: slash < 0 ? "" : bare.slice(slash + 1),
      server: hash < 0 ? null : path.slice(hash + 1),
    };
  }

  // Lines are queued and added once per animation frame: measuring the panel for each line of a
  // burst forced a layout per line (thousands of lines held the tab for tens of seconds).
  let pendingLog = [];
  let logFrame = 0;

  function appendLog(entry) {
    pendingLog.push(entry);
    // A hidden tab runs no frames: keep only what the panel could show.
    if (pendingLog.length > 2 * MAX_LOG_LINES) pendingLog = pendingLog.slice(-MAX_LOG_LINES);
    if (!logFrame) logFrame = requestAnimationFrame(flushLog);
  }

  function flushLog() {
    cancelAnimationFrame(logFrame);
    logFrame = 0;
    const batch = pendingLog.length > MAX_LOG_LINES ? pendingLog.slice(-MAX_LOG_LINES) : pendingLog;
    pendingLog = [];
    if (closed || !batch.length) return;
    const atBottom = logPanel.scrollHeight - logPanel.scrollTop - logPanel.clientHeight < 40;
    const fragment = document.createDocumentFragment();
    for (const entry of batch) fragment.appendChild(logLine(entry));
    logList.appendChild(fragment);
    for (let excess = logList.childElementCount - MAX_LOG_LINES; excess > 0; excess -= 1) logList.firstElementChild.remove();
    if (autoScroll.checked && (atBottom || logList.childElementCount < 50)) logPanel.scrollTop = logPanel.scrollHeight;
  }

  function logLine(entry) {
    const path = String(entry.step || "");
    const place = where(path);
    const kind = entry.kind === "step" ? "step" : "log";
    const el = h("div", {
      class: ["log-line", kind === "step" ? "log-event" : null],
      testid: "log-line",
      "data-step": path,
      "data-job": place.job,
      "data-step-id": place.stepId,
      "data-server": place.server,
      "data-kind": kind,
    }, h("span", { class: "log-step" }, path), " ",
      kind === "step" ? logBadge(entry.status) : null, kind === "step" ? " " : null,
      h("span", { class: "log-text" }, String(entry.line ?? "")));
    el.hidden = !lineMatches(el);
    return el;
  }

  function onLogEvent(event, data) {
    if (closed) return;
    if (event !== "log" && event !== "step") flushLog(); // queued lines come before what follows
    if (event === "log" || event === "step") {
      appendLog(data || {});
      if (event === "step") soon();
    } else if (event === "reconnect") {
      clear(logList); // the stream starts again from the run's first entry
      logStatus.textContent = "reconnecting…";
    } else if (event === "end") {
      const status = data && data.status ? data.status : "finished";
      logList.appendChild(h("div", { class: "log-end muted", testid: "logs-end" }, `— the run ended: ${status} —`));
      logStatus.textContent = "ended";
      soon();
    } else if (event === "error") {
      logPanel.appendChild(errorBox(new ApiError(0, data), "logs-error"));
      logStatus.textContent = "stopped";
    }
    if (event === "log" || event === "step") logStatus.textContent = "live";
  }

  api.stream(`${base}/logs?follow=true`, onLogEvent, { signal: aborter.signal })
    .catch((exc) => {
      if (closed) return;
      logPanel.appendChild(errorBox(exc, "logs-error"));
      logStatus.textContent = "not following";
    });

  // -- the snapshot ----------------------------------------------------------------------------

  api.get(`${base}/snapshot`, null, { signal: aborter.signal }).then((snapshot) => {
    if (closed) return;
    clear(yamlPanel);
    if (!snapshot || !snapshot.source) {
      yamlPanel.appendChild(h("div", { class: "muted" }, "This run was started without a workflow text."));
      return;
    }
    yaml = createYaml(snapshot.source);
    yamlPanel.appendChild(yaml.el);
    yaml.mark(failingLines(detail));
  }).catch((exc) => {
    if (closed) return;
    clear(yamlPanel).appendChild(errorBox(exc, "yaml-error"));
  });

  render();
  schedule(POLL_MS);

  return () => {
    closed = true;
    clearTimeout(timer);
    cancelAnimationFrame(logFrame);
    aborter.abort();
  };
}
