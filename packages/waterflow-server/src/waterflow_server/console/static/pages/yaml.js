// The run's YAML snapshot with line numbers, one <li> per line (text nodes only: the YAML is the
// user's). Lines can be marked as the failing one(s) (`yaml-error-line`) and scrolled to inside
// the panel without moving the page.

import { h } from "../dom.js";

/** Split like the server counts lines (\r\n, \r or \n each end a line). */
function lines(text) {
  const out = String(text).split(/\r\n|\r|\n/);
  if (out.length > 1 && out[out.length - 1] === "") out.pop();
  return out;
}

/**
 * The YAML panel for `source`. Returns `{el, mark(errorLines), focus(line)}`: `mark` highlights
 * exactly the given 1-based lines as failing; `focus` scrolls a line into the panel's view and
 * outlines it (null clears the outline).
 */
export function createYaml(source) {
  const items = [];
  const list = h("ol", { class: "yaml", testid: "yaml" });
  lines(source).forEach((text, index) => {
    const number = index + 1;
    const item = h("li", { "data-line": number },
      h("span", { class: "yaml-ln", "aria-hidden": "true" }, String(number)),
      h("span", { class: "yaml-text" }, text));
    items.push(item);
    list.appendChild(item);
  });
  const el = h("div", { class: "yaml-scroll" }, list);
  let marked = new Set();
  let focused = null;

  function scrollTo(item) {
    // Within the panel only: scrollIntoView would move the whole page under the user.
    const top = item.offsetTop - el.clientHeight / 3;
    el.scrollTop = Math.max(0, top);
  }

  function mark(errorLines) {
    const wanted = new Set((errorLines || []).filter((n) => Number.isInteger(n) && n >= 1 && n <= items.length));
    const fresh = [...wanted].some((n) => !marked.has(n));
    for (const n of marked) {
      if (!wanted.has(n)) {
        const item = items[n - 1];
        item.classList.remove("yaml-error-line");
        item.removeAttribute("data-testid");
      }
    }
    for (const n of wanted) {
      const item = items[n - 1];
      item.classList.add("yaml-error-line");
      item.setAttribute("data-testid", "yaml-error-line");
    }
    marked = wanted;
    if (fresh && !focused) scrollTo(items[Math.min(...wanted) - 1]);
  }

  function focus(line) {
    if (focused) focused.classList.remove("yaml-focus");
    focused = null;
    if (!Number.isInteger(line) || line < 1 || line > items.length) return;
    focused = items[line - 1];
    focused.classList.add("yaml-focus");
    scrollTo(focused);
  }

  return { el, mark, focus };
}
