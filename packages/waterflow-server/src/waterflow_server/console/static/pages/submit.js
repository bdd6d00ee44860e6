// Submit page: a YAML editor checked as you type (POST /v1/validate), its problems listed and
// marked in the line gutter, a form for the workflow's declared inputs, and the submission
// (POST /v1/workflows). The YAML and the form values are kept in the tab's sessionStorage.

import { ApiError } from "../api.js";
import { clear, h } from "../dom.js";

const VALIDATE_DELAY_MS = 300;
const INDENT = "  ";
/** sessionStorage keys; nodes.js writes DRAFT_KEY too ("Try it" on a node's example). */
export const DRAFT_KEY = "waterflow.submit.draft";
const INPUTS_KEY = "waterflow.submit.inputs";
const MAX_UPLOAD_BYTES = 4 * 1024 * 1024;
const PLACEHOLDER = `name: hello
inputs:
  who: {type: string, default: world}
jobs:
  greet:
    runs-on: local
    steps:
      - uses: exec/shell
        with:
          command: echo "hello $<< inputs.who >>"
`;

function load(key, fallback) {
  try {
    const raw = sessionStorage.getItem(key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

function save(key, value) {
  try {
    sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    // A full or disabled storage only loses the draft, never the page.
  }
}

/** Character offset of 1-based (line, column) in `text`, clamped to the text. */
function offsetOf(text, line, column) {
  let offset = 0;
  for (let n = 1; n < line; n += 1) {
    const next = text.indexOf("\n", offset);
    if (next < 0) return text.length;
    offset = next + 1;
  }
  const end = text.indexOf("\n", offset);
  const lineEnd = end < 0 ? text.length : end;
  return Math.min(offset + Math.max(0, (column || 1) - 1), lineEnd);
}

function where(item) {
  if (item.line > 0) return `${item.line}:${item.column}`;
  return item.path || "";
}

/** The text a field shows for a value (defaults and kept values). */
function shown(type, value) {
  if (value === null || value === undefined) return "";
  if (type === "object" || type === "array") return typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return String(value);
}

/**
 * One field for the `index`th declared input; `keptEntry` ({type, value}) is what the user gave it
 * before. Input names are the workflow author's: they never become an element's id or name (a field
 * named `elements` or `firstChild` would otherwise shadow a form's own properties).
 */
function inputField(spec, keptEntry, index) {
  // A value kept for an input of another type (the workflow changed) is not reused.
  const kept = keptEntry && keptEntry.type === spec.type ? keptEntry.value : undefined;
  const base = { id: `wf-input-${index}`, testid: `input-${spec.name}`, "data-type": spec.type };
  const mandatory = spec.required && (spec.default === null || spec.default === undefined);
  let field;
  if (spec.type === "boolean") {
    const checked = kept !== undefined ? Boolean(kept) : spec.default === true;
    field = h("input", { ...base, type: "checkbox", checked });
  } else if (Array.isArray(spec.options)) {
    field = h(
      "select",
      { ...base, required: mandatory },
      spec.default === null || spec.default === undefined ? h("option", { value: "" }, "— choose —") : null,
      spec.options.map((option) => h("option", { value: option }, option)),
    );
    field.value = kept !== undefined ? kept : shown("string", spec.default);
    if (!spec.options.includes(field.value)) field.value = shown("string", spec.default);
  } else if (spec.type === "object" || spec.type === "array") {
    field = h("textarea", {
      ...base,
      rows: "3",
      spellcheck: "false",
      placeholder: spec.type === "object" ? '{"key": "value"}' : '["item"]',
      required: mandatory,
    });
    field.value = kept !== undefined ? kept : shown(spec.type, spec.default);
  } else {
    field = h("input", {
      ...base,
      type: spec.type === "number" ? "number" : "text",
      step: spec.type === "number" ? "any" : null,
      required: mandatory,
    });
    field.value = kept !== undefined ? kept : shown(spec.type, spec.default);
  }
  return { field, mandatory };
}

export async function mount(root, params, ctx) {
  let stopped = false;
  let timer = null;
  let controller = null;
  let sequence = 0;
  let lineCount = 0;
  let declared = [];
  let escaped = false;
  // By input name: a Map, so `__proto__` or `constructor` are names like any other.
  const kept = new Map(Object.entries(load(INPUTS_KEY, {}) || {}));
  const fields = new Map();
  const fieldErrors = new Map();

  const editor = h("textarea", {
    class: "yaml-input",
    testid: "yaml-editor",
    wrap: "off",
    spellcheck: "false",
    autocomplete: "off",
    autocapitalize: "off",
    "aria-label": "Workflow YAML",
    placeholder: PLACEHOLDER,
  });
  editor.value = load(DRAFT_KEY, "") || "";
  const gutterLines = h("div", { class: "gutter-lines" });
  const gutter = h("div", { class: "gutter", testid: "gutter", "aria-hidden": "true" }, gutterLines);
  const upload = h("input", { type: "file", testid: "upload", accept: ".yaml,.yml,application/yaml,text/yaml,text/plain" });
  const status = h("span", { class: "validation-status", testid: "validation-status", "data-state": "empty" });
  const errorList = h("ul", { class: "validation-errors", testid: "validation-errors" });
  const unchecked = h("div", { testid: "validation-unchecked" });
  // A <div>, not a <form>: a form exposes its fields as properties named after them.
  const form = h("div", { class: "inputs-form", testid: "inputs-form", role: "group", "aria-label": "Inputs" });
  const submitButton = h("button", { type: "button", class: "primary", testid: "submit-button" }, "Submit run");
  const submitError = h("div", { testid: "submit-error-box" });

  root.appendChild(
    h(
      "section",
      { class: "submit-page" },
      h(
        "div",
        { class: "toolbar" },
        h("h1", {}, "Submit a workflow"),
        h("span", { class: "grow" }),
        h("label", { class: "upload-label" }, "Open a file: ", upload),
      ),
      h(
        "div",
        { class: "submit-layout" },
        h(
          "div",
          { class: "submit-editor" },
          h("div", { class: "editor" }, gutter, editor),
          h("div", { class: "validation" }, status, unchecked, errorList),
        ),
        h(
          "div",
          { class: "submit-side" },
          h("h2", {}, "Inputs"),
          form,
          h("div", { class: "actions left" }, submitButton),
          submitError,
        ),
      ),
    ),
  );

  // -- the gutter ------------------------------------------------------------------------

  function countLines(text) {
    let lines = 1;
    for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", at + 1)) lines += 1;
    return lines;
  }

  /** Adds or removes only the numbers that changed: a keystroke in a long file stays cheap. */
  function renderGutter() {
    const lines = countLines(editor.value);
    if (lines === lineCount) return;
    if (lines > lineCount) {
      const fresh = document.createDocumentFragment();
      for (let n = lineCount + 1; n <= lines; n += 1) {
        fresh.appendChild(h("div", { class: "gutter-line", "data-line": String(n) }, String(n)));
      }
      gutterLines.appendChild(fresh);
    } else {
      for (let n = lineCount; n > lines; n -= 1) gutterLines.lastElementChild.remove();
    }
    lineCount = lines;
    markLines(currentLineErrors);
    syncScroll();
  }

  function syncScroll() {
    gutter.scrollTop = editor.scrollTop;
  }

  let currentLineErrors = [];

  function markLines(items) {
    currentLineErrors = items;
    for (const old of gutterLines.querySelectorAll(".gutter-line.has-error")) {
      old.classList.remove("has-error");
      old.removeAttribute("title");
      for (const marker of old.querySelectorAll(".error-marker")) marker.remove();
    }
    const byLine = new Map();
    for (const item of items) {
      if (!(item.line > 0)) continue;
      if (!byLine.has(item.line)) byLine.set(item.line, []);
      byLine.get(item.line).push(item.message);
    }
    for (const [line, messages] of byLine) {
      const row = gutterLines.children[line - 1];
      if (!row) continue;
      row.classList.add("has-error");
      row.title = messages.join("\n");
      row.insertBefore(
        h("span", { class: "error-marker", testid: "error-marker", "data-line": String(line) }, "●"),
        row.firstChild,
      );
    }
  }

  function moveCaret(line, column) {
    const offset = offsetOf(editor.value, line, column);
    editor.focus();
    editor.setSelectionRange(offset, offset);
    const lineHeight = parseFloat(getComputedStyle(editor).lineHeight) || 18;
    const top = (line - 1) * lineHeight;
    if (top < editor.scrollTop || top > editor.scrollTop + editor.clientHeight - 2 * lineHeight) {
      editor.scrollTop = Math.max(0, top - editor.clientHeight / 3);
    }
    syncScroll();
  }

  // -- validation --------------------------------------------------------------------------

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function showProblems(items, fallbackMessage) {
    clear(errorList);
    fieldErrors.clear();
    const lineItems = [];
    for (const item of items) {
      const match = /^inputs\.(.+)$/.exec(item.path || "");
      if (!(item.line > 0) && match) {
        fieldErrors.set(match[1], item.message);
      } else {
        lineItems.push(item);
      }
    }
    if (!items.length && fallbackMessage) {
      errorList.appendChild(h("li", { class: "validation-error", testid: "validation-error", "data-line": "0" },
        fallbackMessage));
    }
    for (const item of lineItems) {
      const line = item.line > 0 ? item.line : 0;
      const entry = h(
        "li",
        {
          class: ["validation-error", line ? "clickable" : null],
          testid: "validation-error",
          "data-line": String(line),
          "data-column": String(item.column || 0),
          "data-path": item.path || "",
          title: line ? "Go to the line" : null,
          onclick: line ? () => moveCaret(line, item.column) : null,
        },
        h("span", { class: "where mono" }, where(item)),
        item.path && line ? h("span", { class: "path mono" }, item.path) : null,
        h("span", { class: "message" }, item.message),
      );
      errorList.appendChild(entry);
    }
    markLines(lineItems);
    renderFieldErrors();
  }

  async function validate() {
    const text = editor.value;
    controller?.abort();
    controller = null;
    const mine = ++sequence;
    if (!text.trim()) {
      setStatus("empty", "Paste, type or open a workflow.");
      showProblems([]);
      return;
    }
    controller = new AbortController();
    setStatus("checking", "Checking…");
    try {
      const result = await ctx.api.post("/v1/validate", { workflow: text }, { signal: controller.signal });
      if (stopped || mine !== sequence) return;
      setStatus("valid", `Valid: ${result.name} (${result.jobs.length} job${result.jobs.length === 1 ? "" : "s"})`);
      showProblems([]);
      clear(unchecked);
      if (result.unchecked && result.unchecked.length) {
        unchecked.appendChild(h("div", { class: "muted small" },
          "Checked by the agent when the step runs (not installed on the server): ",
          result.unchecked.join(", ")));
      }
      renderForm(Array.isArray(result.inputs) ? result.inputs : []);
    } catch (exc) {
      if (stopped || mine !== sequence || (exc && exc.name === "AbortError")) return;
      clear(unchecked);
      if (exc instanceof ApiError && exc.status === 422) {
        const count = exc.body.errors.length;
        setStatus("invalid", count ? `${count} problem${count === 1 ? "" : "s"}` : "Invalid");
        showProblems(exc.body.errors, exc.body.message);
      } else {
        setStatus("error", "Could not check the workflow");
        showProblems([], exc && exc.message ? exc.message : String(exc));
      }
    }
  }

  function scheduleValidation() {
    clearTimeout(timer);
    timer = setTimeout(validate, VALIDATE_DELAY_MS);
  }

  function changed() {
    save(DRAFT_KEY, editor.value);
    renderGutter();
    scheduleValidation();
  }

  // -- the inputs form ---------------------------------------------------------------------

  function renderForm(inputs) {
    declared = inputs || [];
    clear(form);
    fields.clear();
    if (!inputs) {
      form.appendChild(h("p", { class: "muted" }, "The form for the workflow's inputs appears once it is valid."));
      return;
    }
    if (!inputs.length) {
      form.appendChild(h("p", { class: "muted", testid: "inputs-none" }, "This workflow declares no inputs."));
      return;
    }
    inputs.forEach((spec, index) => {
      const { field, mandatory } = inputField(spec, kept.get(spec.name), index);
      fields.set(spec.name, field);
      const remember = () => {
        kept.set(spec.name, { type: spec.type, value: field.type === "checkbox" ? field.checked : field.value });
        save(INPUTS_KEY, Object.fromEntries(kept));
      };
      field.oninput = remember;
      field.onchange = remember;
      const label = h(
        "label",
        { for: field.id, class: "input-name mono" },
        spec.name,
        mandatory ? h("span", { class: "required", title: "required" }, " *") : null,
      );
      const hint = [spec.type, Array.isArray(spec.options) ? "choice" : null].filter(Boolean).join(", ");
      form.appendChild(
        h(
          "div",
          { class: "input-field", "data-input": spec.name },
          label,
          h("div", {}, field,
            h("div", { class: "muted small" }, hint, spec.description ? ` — ${spec.description}` : ""),
            h("div", { class: "field-error", testid: "field-error", "data-input": spec.name })),
        ),
      );
    });
    renderFieldErrors();
  }

  function renderFieldErrors() {
    for (const slot of form.querySelectorAll(".field-error")) {
      const message = fieldErrors.get(slot.dataset.input);
      slot.textContent = message || "";
      slot.hidden = !message;
    }
    const unknown = [...fieldErrors.keys()].filter((name) => !declared.some((spec) => spec.name === name));
    for (const name of unknown) {
      // An input the workflow does not declare (e.g. one kept from an older draft).
      errorList.appendChild(h("li", { class: "validation-error", testid: "validation-error", "data-line": "0" },
        h("span", { class: "where mono" }, `inputs.${name}`), h("span", { class: "message" }, fieldErrors.get(name))));
    }
  }

  /** The inputs to send: empty fields are left out so defaults apply and required ones are named. */
  function collectInputs() {
    const values = [];
    for (const spec of declared) {
      const field = fields.get(spec.name);
      if (!field) continue;
      if (spec.type === "boolean") {
        values.push([spec.name, field.checked]);
      } else if (field.value.trim() !== "") {
        values.push([spec.name, field.value]);
      }
    }
    // fromEntries defines own properties: `__proto__` is sent like any other input.
    return Object.fromEntries(values);
  }

  async function submit(event) {
    event.preventDefault();
    clear(submitError);
    submitButton.disabled = true;
    try {
      const ref = await ctx.api.post("/v1/workflows", { workflow: editor.value, inputs: collectInputs() });
      if (!stopped) location.hash = `#/runs/${encodeURIComponent(ref.id)}`;
    } catch (exc) {
      if (stopped) return;
      if (exc instanceof ApiError && exc.status === 422 && exc.body.errors.length) {
        if (exc.body.errors.some((item) => item.line > 0)) setStatus("invalid", "The server refused the workflow");
        showProblems(exc.body.errors, exc.body.message);
      }
      submitError.appendChild(h("div", { class: "error-box", testid: "submit-error" },
        exc && exc.message ? exc.message : String(exc)));
    } finally {
      submitButton.disabled = false;
    }
  }

  /** Tab: two spaces at the caret, or each selected line indented; Shift+Tab: lines dedented. */
  function indent(dedent) {
    const { selectionStart: start, selectionEnd: end, value } = editor;
    if (!dedent && !value.slice(start, end).includes("\n")) {
      editor.setRangeText(INDENT, start, end, "end");
      return;
    }
    const from = value.lastIndexOf("\n", start - 1) + 1;
    const lines = value.slice(from, end).split("\n");
    const out = lines.map((line) => (dedent ? line.replace(/^ {1,2}/, "") : INDENT + line));
    const text = out.join("\n");
    editor.setRangeText(text, from, end, "preserve");
    if (start === end) {
      const caret = Math.max(from, start + out[0].length - lines[0].length);
      editor.setSelectionRange(caret, caret);
    } else {
      editor.setSelectionRange(from, from + text.length);
    }
  }

  // -- events --------------------------------------------------------------------------------

  editor.oninput = changed;
  editor.onscroll = syncScroll;
  editor.onkeydown = (event) => {
    // Escape then Tab leaves the editor: Tab alone indents, and a keyboard user must not be trapped.
    if (event.key === "Escape") {
      escaped = true;
      return;
    }
    if (event.key === "Tab" && !escaped && !event.ctrlKey && !event.altKey && !event.metaKey) {
      event.preventDefault();
      indent(event.shiftKey);
      changed();
    }
    escaped = false;
  };
  upload.onchange = async () => {
    const file = upload.files && upload.files[0];
    if (!file) return;
    if (file.size > MAX_UPLOAD_BYTES) {
      setStatus("error", `${file.name} is over ${MAX_UPLOAD_BYTES / 1024 / 1024} MiB`);
      return;
    }
    editor.value = await file.text();
    upload.value = "";
    editor.scrollTop = 0;
    changed();
    clearTimeout(timer);
    validate();
  };
  // Enter in a one-line field submits too (what a <form> would do); the button sits below the fields.
  form.onkeydown = (event) => {
    const target = event.target;
    if (event.key !== "Enter" || event.isComposing || event.shiftKey || event.ctrlKey || event.altKey || event.metaKey) return;
    if (!(target instanceof HTMLInputElement) || submitButton.disabled) return;
    submit(event);
  };
  submitButton.onclick = submit;

  renderGutter();
  renderForm(null);
  await validate();

  return () => {
    stopped = true;
    clearTimeout(timer);
    controller?.abort();
  };
}
