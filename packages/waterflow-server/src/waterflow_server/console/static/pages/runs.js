// Runs list: status filter, search (name or id contains, any case: the API's `q`), pages,
// refreshed every 2 s while the tab is visible. Filters live in the hash
// (#/runs?status=failed&q=deploy) so a view can be shared.

import { clear, fmtDuration, fmtTime, h, poller, secondsBetween, statusBadge } from "../dom.js";

const POLL_MS = 2000;
const PAGE_SIZE = 50;
const SEARCH_DELAY_MS = 300;
const STATUSES = ["running", "succeeded", "failed", "cancelled", "timed_out"];

function runRow(run) {
  const open = () => {
    location.hash = `#/runs/${encodeURIComponent(run.id)}`;
  };
  const link = h("a", { href: `#/runs/${encodeURIComponent(run.id)}`, testid: "run-link" }, run.name || "(unnamed)");
  return h(
    "tr",
    { class: "clickable", testid: "run-row", "data-run-id": run.id, onclick: open },
    h("td", {}, link, run.check ? [" ", h("span", { class: "tag", title: "check run (--check)" }, "check")] : null),
    h("td", { class: "mono" }, run.id),
    h("td", {}, statusBadge(run.status)),
    h("td", { class: "nowrap" }, fmtTime(run.started_at)),
    h("td", { class: "nowrap", testid: "run-duration" }, fmtDuration(secondsBetween(run.started_at, run.finished_at))),
  );
}

export async function mount(root, params, ctx) {
  const query = params.query || new URLSearchParams();
  const state = {
    status: STATUSES.includes(query.get("status")) ? query.get("status") : "",
    q: query.get("q") || "",
    tokens: [null], // page tokens: tokens[i] opens page i
    page: 0,
    next: null,
  };
  let searchTimer = null;

  const statusSelect = h(
    "select",
    { testid: "runs-status-filter", "aria-label": "Status" },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((status) => h("option", { value: status }, status.replace("_", " "))),
  );
  statusSelect.value = state.status;
  const search = h("input", {
    type: "search",
    testid: "runs-search",
    placeholder: "Search name or id",
    "aria-label": "Search name or id",
    value: state.q,
  });
  const prev = h("button", { type: "button", testid: "runs-prev" }, "‹ Newer");
  const next = h("button", { type: "button", testid: "runs-next" }, "Older ›");
  const pageLabel = h("span", { class: "muted", testid: "runs-page" });
  const message = h("div", { testid: "runs-message" });
  const body = h("tbody");
  const table = h(
    "table",
    { class: "data", testid: "runs-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", {}, "Workflow"),
        h("th", {}, "Run id"),
        h("th", {}, "Status"),
        h("th", { class: "nowrap" }, "Started"),
        h("th", {}, "Duration"),
      ),
    ),
    body,
  );

  root.appendChild(
    h(
      "section",
      { class: "runs-page" },
      h(
        "div",
        { class: "toolbar" },
        h("h1", {}, "Runs"),
        h("span", { class: "grow" }),
        statusSelect,
        search,
      ),
      message,
      table,
      h("div", { class: "pager" }, prev, pageLabel, next),
    ),
  );

  function remember() {
    // Keep the filters in the address without a hashchange (that would remount the page).
    const shown = new URLSearchParams();
    if (state.status) shown.set("status", state.status);
    if (state.q) shown.set("q", state.q);
    const text = shown.toString();
    history.replaceState(null, "", `#/runs${text ? `?${text}` : ""}`);
  }

  function render(list) {
    clear(body);
    clear(message);
    const runs = list.runs || [];
    for (const run of runs) body.appendChild(runRow(run));
    if (!runs.length) {
      body.appendChild(
        h("tr", {}, h("td", { colspan: "5", class: "empty", testid: "runs-empty" },
          state.status || state.q ? "No runs match these filters." : "No runs yet.")),
      );
    }
    state.next = list.next_page_token || null;
    prev.disabled = state.page === 0;
    next.disabled = !state.next;
    pageLabel.textContent = `page ${state.page + 1}`;
  }

  const poll = poller(async () => {
    const wanted = { status: state.status, q: state.q, page: state.page };
    try {
      const list = await ctx.api.get("/v1/workflows", {
        status: state.status,
        q: state.q.trim(),
        page_size: PAGE_SIZE,
        page_token: state.tokens[state.page],
      });
      const current = { status: state.status, q: state.q, page: state.page };
      if (!poll.stopped && JSON.stringify(wanted) === JSON.stringify(current)) render(list);
    } catch (exc) {
      if (!poll.stopped) {
        clear(message);
        message.appendChild(h("div", { class: "error-box", testid: "runs-error" }, exc.message || String(exc)));
      }
    }
  }, POLL_MS);

  function restart() {
    state.tokens = [null];
    state.page = 0;
    remember();
    poll.refresh();
  }

  statusSelect.onchange = () => {
    state.status = statusSelect.value;
    restart();
  };
  search.oninput = () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.q = search.value;
      restart();
    }, SEARCH_DELAY_MS);
  };
  search.onkeydown = (event) => {
    if (event.key === "Enter") {
      clearTimeout(searchTimer);
      state.q = search.value;
      restart();
    }
  };
  prev.onclick = () => {
    if (state.page === 0) return;
    state.page -= 1;
    poll.refresh();
  };
  next.onclick = () => {
    if (!state.next) return;
    state.tokens[state.page + 1] = state.next;
    state.page += 1;
    poll.refresh();
  };
  const onVisible = () => {
    if (!document.hidden) poll.refresh();
  };
  document.addEventListener("visibilitychange", onVisible);

  await poll.refresh();
  poll.start();

  return () => {
    poll.stop();
    clearTimeout(searchTimer);
    document.removeEventListener("visibilitychange", onVisible);
  };
}
