// Agents page: the registered agents (GET /v1/agents) with their groups, health, nodes and
// platform facts; a group filter (kept in the hash: #/agents?group=web) and a refresh every 5 s.

import { clear, fmtTime, h, poller } from "../dom.js";

const POLL_MS = 5000;
/** Facts shown first, in this order, with these labels; any others follow by name. */
const KNOWN_FACTS = [
  ["hostname", "host"],
  ["os", "os"],
  ["os_release", "release"],
  ["arch", "arch"],
  ["cpu_count", "cpus"],
  ["python", "python"],
  ["agent_version", "agent"],
];
const MAX_FACT_TEXT = 200;

function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (Number.isNaN(seconds)) return String(iso);
  if (seconds < 2) return "just now";
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86400)}d ago`;
}

function factText(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > MAX_FACT_TEXT ? `${text.slice(0, MAX_FACT_TEXT - 1)}…` : text;
}

function factList(facts) {
  const entries = facts && typeof facts === "object" ? facts : {};
  const known = new Set(KNOWN_FACTS.map(([key]) => key));
  const shown = [
    ...KNOWN_FACTS.filter(([key]) => key in entries).map(([key, label]) => [key, label]),
    ...Object.keys(entries).filter((key) => !known.has(key)).sort().map((key) => [key, key]),
  ];
  if (!shown.length) return h("span", { class: "muted" }, "—");
  return h(
    "dl",
    { class: "facts", testid: "agent-facts" },
    shown.map(([key, label]) => [h("dt", {}, label), h("dd", { "data-fact": key }, factText(entries[key]))]),
  );
}

function nodeList(nodes) {
  if (!nodes || !nodes.length) return h("span", { class: "muted" }, "—");
  return h(
    "ul",
    { class: "agent-nodes", testid: "agent-nodes" },
    nodes.map((entry) => {
      const at = entry.lastIndexOf("@");
      const type = at > 0 ? entry.slice(0, at) : entry;
      const version = at > 0 ? entry.slice(at + 1) : "";
      return h(
        "li",
        { "data-node": type },
        h("a", { href: `#/nodes/${encodeURIComponent(type)}`, class: "mono" }, type),
        version ? h("span", { class: "muted" }, ` ${version}`) : null,
      );
    }),
  );
}

function agentRow(agent) {
  const health = agent.alive ? "alive" : "down";
  return h(
    "tr",
    { testid: "agent-row", "data-agent": agent.name, "data-alive": String(Boolean(agent.alive)) },
    h("td", { class: "mono" }, agent.name),
    h("td", {}, (agent.groups || []).map((group) => [h("span", { class: "tag", "data-group": group }, group), " "])),
    h(
      "td",
      { class: "nowrap" },
      h("span", { class: `status status-agent-${health}`, testid: "agent-health" }, health),
      h("div", { class: "muted small", title: fmtTime(agent.last_seen), testid: "agent-last-seen" },
        `seen ${ago(agent.last_seen)}`),
    ),
    h("td", { class: "nowrap small" }, fmtTime(agent.started_at)),
    h("td", {}, nodeList(agent.nodes)),
    h("td", {}, factList(agent.facts)),
  );
}

export async function mount(root, params, ctx) {
  const query = params.query || new URLSearchParams();
  const state = { group: query.get("group") || "", all: query.get("all") === "true", agents: [] };

  const groupSelect = h("select", { testid: "agents-group-filter", "aria-label": "Group" });
  const showAll = h("input", { type: "checkbox", testid: "agents-all", checked: state.all });
  const updated = h("span", { class: "muted small", testid: "agents-updated" });
  const message = h("div", { testid: "agents-message" });
  const count = h("span", { class: "muted", testid: "agents-count" });
  const body = h("tbody");
  root.appendChild(
    h(
      "section",
      { class: "agents-page" },
      h(
        "div",
        { class: "toolbar" },
        h("h1", {}, "Agents"),
        count,
        h("span", { class: "grow" }),
        h("label", {}, "Group ", groupSelect),
        h("label", { title: "Also list agents that stopped heartbeating" }, showAll, " include stopped"),
        updated,
      ),
      message,
      h(
        "table",
        { class: "data agents", testid: "agents-table" },
        h(
          "thead",
          {},
          h("tr", {}, h("th", {}, "Agent"), h("th", {}, "Groups"), h("th", {}, "Health"), h("th", {}, "Started"),
            h("th", {}, "Nodes"), h("th", {}, "Platform")),
        ),
        body,
      ),
    ),
  );

  function remember() {
    const shown = new URLSearchParams();
    if (state.group) shown.set("group", state.group);
    if (state.all) shown.set("all", "true");
    const text = shown.toString();
    history.replaceState(null, "", `#/agents${text ? `?${text}` : ""}`);
  }

  function renderGroups() {
    const groups = [...new Set(state.agents.flatMap((agent) => agent.groups || []))].sort();
    if (state.group && !groups.includes(state.group)) groups.unshift(state.group);
    clear(groupSelect);
    groupSelect.appendChild(h("option", { value: "" }, "All groups"));
    for (const group of groups) groupSelect.appendChild(h("option", { value: group }, group));
    groupSelect.value = state.group;
  }

  function render() {
    renderGroups();
    clear(body);
    const shown = state.agents.filter((agent) => !state.group || (agent.groups || []).includes(state.group));
    for (const agent of shown) body.appendChild(agentRow(agent));
    if (!shown.length) {
      const text = state.agents.length ? `No agent serves the group ${state.group}.` : "No agents registered.";
      body.appendChild(h("tr", {}, h("td", { colspan: "6", class: "empty", testid: "agents-empty" }, text)));
    }
    count.textContent = `${shown.length} of ${state.agents.length}`;
  }

  const poll = poller(async () => {
    try {
      const list = await ctx.api.get("/v1/agents", { all: state.all ? "true" : "" });
      if (poll.stopped) return;
      state.agents = [...(list.agents || [])].sort((a, b) => String(a.name).localeCompare(String(b.name)));
      clear(message);
      if (list.complete === false) {
        message.appendChild(h("div", { class: "note", testid: "agents-incomplete" },
          list.message || "The agent registry could not be read in full."));
      }
      render();
      updated.textContent = `updated ${fmtTime(new Date().toISOString())}`;
    } catch (exc) {
      if (poll.stopped) return;
      clear(message);
      message.appendChild(h("div", { class: "error-box", testid: "agents-error" }, exc.message || String(exc)));
    }
  }, POLL_MS);

  groupSelect.onchange = () => {
    state.group = groupSelect.value;
    remember();
    render();
  };
  showAll.onchange = () => {
    state.all = showAll.checked;
    remember();
    poll.refresh();
  };

  renderGroups();
  await poll.refresh();
  poll.start();
  return () => poll.stop();
}
