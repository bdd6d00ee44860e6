// The run's YAML snapshot with line numbers, one <li> per line (text nodes only: the YAML is the
// user's). Lines can be marked as the failing one(s) (`yaml-error-line`) and scrolled to inside
// the panel without moving the page. A huge snapshot shows a window of MAX_SHOWN lines around the
// marked or focused line, with controls to show more on either side: building one element per
// line of a 100,000-line file would hold the tab for many seconds.

import { h } from "../dom.js";

const MAX_SHOWN = 5000;

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
  const texts = lines(source);
  const total = texts.length;
  const items = new Map(); // line number -> <li>, built when first shown
  const list = h("ol", { class: "yaml", testid: "yaml" });
  const before = h("button", { type: "button", class: "link-button yaml-more", testid: "yaml-more-before" });
  const after = h("button", { type: "button", class: "link-button yaml-more", testid: "yaml-more-after" });
  const el = h("div", { class: "yaml-scroll" }, before, list, after);
  let marked = new Set();
  let focused = null; // line number
  let first = 1; // the lines shown: first .. last
  let last = 0;

  function item(number) {
    let li = items.get(number);
    if (!li) {
      li = h("li", { "data-line": number },
        h("span", { class: "yaml-ln", "aria-hidden": "true" }, String(number)),
        h("span", { class: "yaml-text" }, texts[number - 1]));
      items.set(number, li);
      if (marked.has(number)) {
        li.classList.add("yaml-error-line");
        li.setAttribute("data-testid", "yaml-error-line");
      }
      if (focused === number) li.classList.add("yaml-focus");
    }
    return li;
  }

  function range(from, to) {
    const fragment = document.createDocumentFragment();
    for (let n = from; n <= to; n += 1) fragment.appendChild(item(n));
    return fragment;
  }

  function controls() {
    const hiddenBefore = first - 1;
    const hiddenAfter = total - last;
    before.hidden = hiddenBefore <= 0;
    after.hidden = hiddenAfter <= 0;
    before.textContent = `${hiddenBefore} earlier line(s) not shown: show ${Math.min(hiddenBefore, MAX_SHOWN)} more`;
    after.textContent = `${hiddenAfter} later line(s) not shown: show ${Math.min(hiddenAfter, MAX_SHOWN)} more`;
  }

  /** Show the MAX_SHOWN lines around `line`. */
  function showAround(line) {
    first = Math.max(1, line - Math.floor(MAX_SHOWN / 2));
    last = Math.min(total, first + MAX_SHOWN - 1);
    first = Math.max(1, last - MAX_SHOWN + 1);
    list.replaceChildren(range(first, last));
    controls();
  }

  before.onclick = () => {
    const from = Math.max(1, first - MAX_SHOWN);
    const height = list.scrollHeight;
    list.insertBefore(range(from, first - 1), list.firstChild);
    first = from;
    el.scrollTop += list.scrollHeight - height; // the lines being read stay in place
    controls();
  };
  after.onclick = () => {
    const to = Math.min(total, last + MAX_SHOWN);
    list.appendChild(range(last + 1, to));
    last = to;
    controls();
  };

  function reveal(line) {
    if (line < first || line > last) showAround(line);
    // Within the panel only: scrollIntoView would move the whole page under the user.
    const top = item(line).offsetTop - el.clientHeight / 3;
    el.scrollTop = Math.max(0, top);
  }

  function mark(errorLines) {
    const wanted = new Set((errorLines || []).filter((n) => Number.isInteger(n) && n >= 1 && n <= total));
    const fresh = [...wanted].some((n) => !marked.has(n));
    for (const n of marked) {
      const li = items.get(n);
      if (!wanted.has(n) && li) {
        li.classList.remove("yaml-error-line");
        li.removeAttribute("data-testid");
      }
    }
    marked = wanted;
    for (const n of wanted) {
      const li = items.get(n);
      if (li) {
        li.classList.add("yaml-error-line");
        li.setAttribute("data-testid", "yaml-error-line");
      }
    }
    if (fresh && focused === null) reveal(Math.min(...wanted));
  }

  function focus(line) {
    if (focused !== null && items.has(focused)) items.get(focused).classList.remove("yaml-focus");
    focused = null;
    if (!Number.isInteger(line) || line < 1 || line > total) return;
    focused = line;
    item(line).classList.add("yaml-focus");
    reveal(line);
  }

  showAround(1);
  return { el, mark, focus };
}
