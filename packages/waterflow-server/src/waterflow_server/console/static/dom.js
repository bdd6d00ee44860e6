// DOM helpers for the console. Everything the API returns (workflow names, step outputs, log
// lines, errors, YAML) is attacker-controlled: build elements with h()/s() and text nodes, never
// with innerHTML, insertAdjacentHTML or outerHTML. The CSP forbids inline styles and handlers, so
// handlers are set as properties and `style` (an object) goes through the CSSOM.

const SVG_NS = "http://www.w3.org/2000/svg";

function applyAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "testid") {
      el.setAttribute("data-testid", String(value));
    } else if (key === "class") {
      el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : String(value));
    } else if (key === "dataset") {
      for (const [name, v] of Object.entries(value)) {
        if (v !== null && v !== undefined) el.dataset[name] = String(v);
      }
    } else if (key === "style") {
      // An object of CSS properties; a style *attribute* would be blocked by the CSP.
      for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, String(v));
    } else if (key.startsWith("on") && typeof value === "function") {
      el[key] = value; // onclick, oninput, onsubmit, ...: a property, never an attribute
    } else if (key.startsWith("on")) {
      throw new Error(`h(): ${key} must be a function`);
    } else if (key === "value" || key === "checked" || key === "selected") {
      el[key] = value; // the live property (a textarea has no value attribute)
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

function appendChildren(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendChildren(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/**
 * Build an HTML element. attrs: `class` (string or array), `testid` (→ data-testid), `data-*`,
 * `dataset` ({name: value}), `style` ({prop: value}), `on*` handlers (functions, set as
 * properties), `value`/`checked`/`selected` (properties), anything else as an attribute (true →
 * present, false/null/undefined → absent). Children: nodes, strings/numbers (text nodes),
 * arrays of them; null/undefined/false are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  appendChildren(el, children);
  return el;
}

/** Like h() for SVG elements (svg, g, rect, path, text, line, title, ...). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  appendChildren(el, children);
  return el;
}

/** Remove every child of `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** An ISO timestamp as local `YYYY-MM-DD HH:MM:SS`; "—" for none, the input for garbage. */
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/**
 * A duration for humans: `fmtDuration(75)` → "1m 15s", `fmtDuration(850, "ms")` → "850ms".
 * `unit` is "s" (default) or "ms". "—" for null/undefined/negative.
 */
export function fmtDuration(value, unit = "s") {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
  const ms = unit === "ms" ? Number(value) : Number(value) * 1000;
  if (ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const secs = ms / 1000;
  if (secs < 60) return `${secs < 10 ? secs.toFixed(1) : Math.round(secs)}s`;
  const total = Math.round(secs);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  if (h > 0) return `${h}h ${pad(m)}m`;
  return `${m}m ${pad(sec)}s`;
}

/** Seconds between two ISO timestamps; `end` missing → until now. null when `start` is missing. */
export function secondsBetween(start, end) {
  if (!start) return null;
  const from = new Date(start).getTime();
  const to = end ? new Date(end).getTime() : Date.now();
  if (Number.isNaN(from) || Number.isNaN(to)) return null;
  return Math.max(0, (to - from) / 1000);
}

/** `<span class="status status-<status>" data-testid="status">status</span>`. */
export function statusBadge(status) {
  const text = status ? String(status) : "unknown";
  const cls = /^[a-z_]+$/.test(text) ? text : "unknown";
  return h("span", { class: `status status-${cls}`, testid: "status" }, text);
}

/**
 * Keeps a page's data fresh: `refresh()` calls `fetchOnce` now, and every `ms` while the tab is
 * visible once `start()` was called. A refresh asked for while one is in flight (a filter changed
 * mid-request) runs once more when it is back instead of overlapping it. `stopped` turns true on
 * `stop()`, so `fetchOnce` can drop an answer that arrives after the page went away.
 */
export function poller(fetchOnce, ms) {
  let timer = null;
  let loading = false;
  let again = false;
  const poll = {
    stopped: false,
    async refresh() {
      if (poll.stopped) return;
      if (loading) {
        again = true;
        return;
      }
      loading = true;
      try {
        await fetchOnce();
      } finally {
        loading = false;
      }
      if (again) {
        again = false;
        await poll.refresh();
      }
    },
    start() {
      clearTimeout(timer);
      if (poll.stopped) return;
      timer = setTimeout(async () => {
        if (!document.hidden) await poll.refresh();
        poll.start();
      }, ms);
    },
    stop() {
      poll.stopped = true;
      clearTimeout(timer);
    },
  };
  return poll;
}
