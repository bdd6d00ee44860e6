// The job DAG of a run as an inline SVG built with DOM calls (never markup: job names, server
// names and errors are the user's). Jobs are laid out left to right by dependency depth, `needs`
// are the edges; a fan-out job is a group with one node per instance (server). A node's colour is
// its status. The shape is rebuilt only when the set of jobs and instances changes; otherwise the
// nodes are recoloured in place, so a poll does not disturb the page.

import { s } from "../dom.js";

const NODE_W = 200;
const NODE_H = 26;
const TITLE_H = 22;
const GAP_X = 56;
const GAP_Y = 14;
const PAD = 8;
const MAX_LABEL = 26;

function short(text) {
  const value = String(text);
  return value.length > MAX_LABEL ? `${value.slice(0, MAX_LABEL - 1)}…` : value;
}

/** The jobs to draw: the server's graph (needs, fan-out) merged with the progress tree. */
function model(detail) {
  const byJob = new Map();
  const order = [];
  const add = (id, name, needs, fanOut) => {
    if (!byJob.has(id)) {
      byJob.set(id, { id, name: name || id, needs: needs || [], fanOut: !!fanOut, entry: null, instances: [] });
      order.push(id);
    }
    return byJob.get(id);
  };
  for (const job of detail.graph || []) add(job.id, job.name, job.needs, job.fan_out);
  for (const entry of detail.jobs || []) {
    const job = add(entry.id, entry.name, [], false);
    if (entry.instance === null || entry.instance === undefined) job.entry = entry;
    else {
      job.fanOut = true;
      job.instances.push(entry);
    }
  }
  for (const job of byJob.values()) job.needs = job.needs.filter((need) => byJob.has(need));
  return order.map((id) => byJob.get(id));
}

function depths(jobs) {
  const byId = new Map(jobs.map((job) => [job.id, job]));
  const memo = new Map();
  const visit = (job, trail) => {
    if (memo.has(job.id)) return memo.get(job.id);
    if (trail.has(job.id)) return 0; // a cycle cannot pass validation; do not loop on one anyway
    trail.add(job.id);
    let depth = 0;
    for (const need of job.needs) depth = Math.max(depth, visit(byId.get(need), trail) + 1);
    trail.delete(job.id);
    memo.set(job.id, depth);
    return depth;
  };
  for (const job of jobs) visit(job, new Set());
  return memo;
}

/** The status a node shows: a job or instance waiting at an approval gate reads "waiting". */
export function shownStatus(entry) {
  if (!entry) return "pending";
  if (entry.status === "running" && (entry.steps || []).some((step) => step.waiting)) return "waiting";
  return entry.status || "pending";
}

function aggregateStatus(job) {
  if (job.entry) {
    if (job.entry.status === "running" && job.instances.some((i) => shownStatus(i) === "waiting")) return "waiting";
    return shownStatus(job.entry);
  }
  return "pending";
}

function statusClass(status) {
  return /^[a-z_]+$/.test(status) ? `dag-status-${status}` : "dag-status-pending";
}

/**
 * A DAG view. `onSelect({job, server})` is called when a node is clicked (`null` when the
 * selected node is clicked again). Returns `{el, update(detail, selected)}`.
 */
export function createDag({ onSelect }) {
  const svg = s("svg", { class: "dag", testid: "dag", role: "group", "aria-label": "job graph" });
  let shape = "";
  let nodes = []; // {el, rect, title, label, job, server}
  let groups = []; // {el, caption, job}: the frame of each fan-out job

  function select(job, server, current) {
    const same = current && current.job === job && (current.server || null) === (server || null);
    onSelect(same ? null : { job, server: server || null });
  }

  function node(job, server, label, x, y, w, current) {
    const rect = s("rect", { x, y, width: w, height: NODE_H, rx: 5 });
    const title = s("title", {}, "");
    const text = s("text", { x: x + 8, y: y + NODE_H / 2 + 4 }, short(label));
    const el = s("g", {
      class: "dag-node",
      testid: "dag-node",
      "data-job": job,
      "data-server": server,
      tabindex: 0,
      role: "button",
    }, title, rect, text);
    el.onclick = () => select(job, server, current());
    el.onkeydown = (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        select(job, server, current());
      }
    };
    return { el, rect, title, label, job, server };
  }

  function build(jobs, current) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    nodes = [];
    groups = [];
    const depth = depths(jobs);
    const columns = [];
    for (const job of jobs) {
      const d = depth.get(job.id) || 0;
      (columns[d] = columns[d] || []).push(job);
    }
    const boxes = new Map();
    const edges = s("g", { class: "dag-edges" });
    const body = s("g", {});
    svg.appendChild(edges);
    svg.appendChild(body);
    let width = 0;
    let height = 0;
    columns.forEach((column, d) => {
      let y = PAD;
      const x = PAD + d * (NODE_W + GAP_X);
      for (const job of column || []) {
        if (job.fanOut) {
          const count = Math.max(job.instances.length, 1);
          const h = TITLE_H + count * (NODE_H + 4) + 4;
          const group = s("g", { class: "dag-group", testid: "dag-group", "data-job": job.id });
          const frame = s("rect", { class: "dag-group-frame", x, y, width: NODE_W, height: h, rx: 6 });
          const caption = s("text", { class: "dag-group-title", x: x + 8, y: y + 15 }, short(job.name));
          const tip = s("title", {}, "");
          group.appendChild(tip);
          group.appendChild(frame);
          group.appendChild(caption);
          groups.push({ el: group, tip, caption, job: job.id });
          if (job.instances.length === 0) {
            const only = node(job.id, null, "(no instances yet)", x + 6, y + TITLE_H, NODE_W - 12, current);
            nodes.push(only);
            group.appendChild(only.el);
          }
          job.instances.forEach((instance, i) => {
            const n = node(job.id, instance.instance, instance.instance, x + 6, y + TITLE_H + i * (NODE_H + 4), NODE_W - 12, current);
            nodes.push(n);
            group.appendChild(n.el);
          });
          body.appendChild(group);
          boxes.set(job.id, { x, y, h });
          y += h + GAP_Y;
        } else {
          const n = node(job.id, null, job.name, x, y, NODE_W, current);
          nodes.push(n);
          body.appendChild(n.el);
          boxes.set(job.id, { x, y, h: NODE_H });
          y += NODE_H + GAP_Y;
        }
      }
      width = Math.max(width, x + NODE_W + PAD);
      height = Math.max(height, y + PAD);
    });
    for (const job of jobs) {
      const to = boxes.get(job.id);
      for (const need of job.needs) {
        const from = boxes.get(need);
        if (!from || !to) continue;
        const x1 = from.x + NODE_W;
        const y1 = from.y + Math.min(from.h, 60) / 2;
        const x2 = to.x;
        const y2 = to.y + Math.min(to.h, 60) / 2;
        const mid = (x1 + x2) / 2;
        edges.appendChild(s("path", {
          class: "dag-edge",
          testid: "dag-edge",
          "data-from": need,
          "data-to": job.id,
          d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`,
        }));
      }
    }
    svg.setAttribute("width", String(Math.max(width, 10)));
    svg.setAttribute("height", String(Math.max(height, 10)));
    svg.setAttribute("viewBox", `0 0 ${Math.max(width, 10)} ${Math.max(height, 10)}`);
  }

  let selected = null;

  function update(detail, selection) {
    selected = selection || null;
    const jobs = model(detail);
    const key = JSON.stringify(jobs.map((job) => [job.id, job.needs, job.fanOut, job.instances.map((i) => i.instance)]));
    if (key !== shape) {
      shape = key;
      build(jobs, () => selected);
    }
    const byJob = new Map(jobs.map((job) => [job.id, job]));
    // Each instance by job and server, built once: a find() per node is quadratic in a big fan-out.
    const instances = new Map(jobs.map((job) => [job.id, new Map(job.instances.map((i) => [i.instance, i]))]));
    for (const g of groups) {
      const job = byJob.get(g.job);
      const status = job ? aggregateStatus(job) : "pending";
      const failed = job ? job.instances.filter((i) => i.status === "failure").length : 0;
      g.el.setAttribute("class", `dag-group ${statusClass(status)}`);
      g.el.setAttribute("data-status", status);
      const total = job ? job.instances.length : 0;
      const name = job ? job.name : g.job;
      g.caption.textContent = failed ? `${short(name)} · ${failed} of ${total} failed` : short(name);
      g.tip.textContent = `${name}: ${status}` + (total ? ` (${failed} of ${total} instances failed)` : "");
    }
    for (const n of nodes) {
      const job = byJob.get(n.job);
      let status = "pending";
      let error = "";
      if (job && n.server !== null && n.server !== undefined) {
        const instance = instances.get(n.job).get(n.server);
        status = shownStatus(instance);
        error = (instance && instance.error) || "";
      } else if (job) {
        status = aggregateStatus(job);
        error = (job.entry && job.entry.error) || "";
      }
      n.el.setAttribute("class", `dag-node ${statusClass(status)}`);
      n.el.setAttribute("data-status", status);
      const isSelected = !!selected && selected.job === n.job && (selected.server || null) === (n.server || null);
      n.el.classList.toggle("dag-selected", isSelected);
      n.el.setAttribute("aria-pressed", isSelected ? "true" : "false");
      const where = n.server ? `${n.job} on ${n.server}` : (job ? job.name : n.job);
      n.title.textContent = `${where}: ${status}${error ? ` — ${error}` : ""}`;
    }
  }

  return { el: svg, update };
}
