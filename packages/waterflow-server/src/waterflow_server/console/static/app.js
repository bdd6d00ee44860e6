// The console shell: a hash router that mounts one page module at a time into <main id="view">,
// and the token prompt shown when the API answers 401.

import { api, getToken, onUnauthorized, setToken } from "./api.js";
import { clear, h } from "./dom.js";

// Each page module exports `async mount(root, params, ctx)` returning an optional cleanup().
const ROUTES = [
  { pattern: /^\/runs\/?$/, page: "runs", module: "./pages/runs.js" },
  { pattern: /^\/runs\/([^/]+)\/?$/, page: "runs", module: "./pages/run.js" },
  { pattern: /^\/submit\/?$/, page: "submit", module: "./pages/submit.js" },
  { pattern: /^\/agents\/?$/, page: "agents", module: "./pages/agents.js" },
  { pattern: /^\/nodes\/?$/, page: "nodes", module: "./pages/nodes.js" },
  { pattern: /^\/nodes\/([^/]+)\/?$/, page: "nodes", module: "./pages/nodes.js" },
];
const DEFAULT_ROUTE = "#/runs";
// The server's run-id pattern (api/runs.py RUN_ID_RE): `#/runs/..` must not become GET /v1/.
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._~:-]{0,199}$/;

let consoleInfo = null;

/** GET /v1/console once (version, namespace, temporal_ui_url, auth); later calls share it. */
function info() {
  if (!consoleInfo) {
    consoleInfo = api.get("/v1/console").catch((exc) => {
      consoleInfo = null;
      throw exc;
    });
  }
  return consoleInfo;
}

const ctx = { api, info };

function parseHash(hash) {
  const raw = (hash || "").replace(/^#/, "") || "/runs";
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    let id;
    if (match[1] !== undefined) {
      try {
        id = decodeURIComponent(match[1]);
      } catch {
        return null;
      }
      if (route.module === "./pages/run.js" && !RUN_ID.test(id)) return null;
    }
    return { route, params: id === undefined ? { query } : { id, query } };
  }
  return null;
}

let cleanup = null;
let generation = 0;

function runCleanup() {
  const done = cleanup;
  cleanup = null;
  if (typeof done === "function") {
    try {
      done();
    } catch (exc) {
      console.error("page cleanup failed", exc);
    }
  }
}

function markNav(page) {
  for (const link of document.querySelectorAll(".nav a")) {
    link.classList.toggle("active", link.dataset.route === page);
  }
}

function showError(view, exc) {
  clear(view);
  const message = exc && exc.message ? exc.message : String(exc);
  view.appendChild(h("div", { class: "error-box", testid: "page-error" }, message));
}

async function route() {
  const view = document.getElementById("view");
  const found = parseHash(location.hash);
  if (!found) {
    if (location.hash && location.hash !== DEFAULT_ROUTE) {
      runCleanup();
      clear(view);
      view.appendChild(h("div", { class: "error-box", testid: "page-error" },
        "No such page. ", h("a", { href: DEFAULT_ROUTE }, "Go to the runs.")));
      return;
    }
    location.hash = DEFAULT_ROUTE;
    return;
  }
  const mine = ++generation;
  runCleanup();
  clear(view);
  markNav(found.route.page);
  try {
    const module = await import(found.route.module);
    if (mine !== generation) return;
    // Each page gets a fresh container: a page still mounting when the user moves on writes
    // into a detached element, never into the next page.
    const host = h("div", { class: "page" });
    view.appendChild(host);
    const result = await module.mount(host, found.params, ctx);
    if (mine !== generation) {
      // The user navigated away while this page was still mounting.
      if (typeof result === "function") result();
      return;
    }
    cleanup = result;
  } catch (exc) {
    if (mine === generation) showError(view, exc);
  }
}

/** Show the token form; resolves once a token is stored. */
function promptForToken(body) {
  return new Promise((resolve) => {
    const overlay = document.getElementById("overlay");
    clear(overlay);
    const input = h("input", {
      type: "password",
      name: "token",
      autocomplete: "off",
      testid: "token-input",
      placeholder: "API token",
      required: true,
    });
    const reason = body && body.message ? body.message : "This server needs an API token.";
    const form = h(
      "form",
      {
        class: "token-form",
        testid: "token-form",
        onsubmit: (event) => {
          event.preventDefault();
          const token = input.value.trim();
          if (!token) return;
          setToken(token);
          clear(overlay);
          overlay.classList.remove("open");
          resolve();
        },
      },
      h("h2", {}, "API token"),
      h("p", { class: "muted", testid: "token-reason" }, reason),
      h("p", { class: "muted" }, "The token is kept in this browser tab only (sessionStorage)."),
      input,
      h("div", { class: "actions" }, h("button", { type: "submit", testid: "token-submit" }, "Use token")),
    );
    overlay.appendChild(form);
    overlay.classList.add("open");
    input.focus();
  });
}

function showServerInfo() {
  const target = document.getElementById("server-info");
  info()
    .then((data) => {
      clear(target);
      target.appendChild(document.createTextNode(`${data.namespace} · v${data.version}`));
    })
    .catch(() => {});
}

onUnauthorized(promptForToken);

document.getElementById("token-button").onclick = () => {
  promptForToken(
    getToken() ? { message: "Replace the API token used by this tab." } : null,
  ).then(() => {
    consoleInfo = null;
    showServerInfo();
    route();
  });
};

window.addEventListener("hashchange", route);
route();
showServerInfo();
