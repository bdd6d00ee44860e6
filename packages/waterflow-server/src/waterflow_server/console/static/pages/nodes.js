// Nodes page: the node catalog (GET /v1/nodes) as a list (#/nodes) and, per type
// (#/nodes/<type>, the type URL-encoded: exec%2Fshell), its input and output JSON Schemas as
// readable tables plus a workflow using it, generated from its required inputs.
//
// Schemas come from the server and from node packages: nothing about them is trusted. A $ref
// cycle, a deep nesting or a huge description renders as a few bounded rows, and every text
// goes into a text node.

import { clear, h } from "../dom.js";
import { DRAFT_KEY } from "./submit.js";

const MAX_DEPTH = 4;
const MAX_ROWS = 400;
/** Values written into one usage example at most (a hostile schema could ask for millions). */
const MAX_EXAMPLE_VALUES = 200;
const MAX_MEMBERS = 10;
const MAX_ENUM_VALUES = 50;
const MAX_TYPE = 80;

function cut(text, limit) {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function literal(value) {
  return typeof value === "string" ? `'${value}'` : JSON.stringify(value);
}

function major(version) {
  const match = /^(\d+)/.exec(String(version || ""));
  return match ? match[1] : null;
}

/** A local `#/$defs/Name` reference of `root` (anything else: null). */
function resolveRef(ref, root) {
  if (typeof ref !== "string" || !ref.startsWith("#/")) return null;
  let target = root;
  for (const part of ref.slice(2).split("/")) {
    target = isObject(target) ? target[part.replace(/~1/g, "/").replace(/~0/g, "~")] : null;
  }
  return isObject(target) ? target : null;
}

/** `schema` with $refs followed and an `anyOf: [X, null]` unwrapped to X (depth-bounded). */
function deref(schema, root) {
  let current = schema;
  for (let i = 0; i < MAX_DEPTH && isObject(current); i += 1) {
    if (typeof current.$ref === "string") {
      current = resolveRef(current.$ref, root);
      continue;
    }
    const members = current.anyOf || current.oneOf;
    if (Array.isArray(members)) {
      const real = members.filter((m) => !(isObject(m) && m.type === "null"));
      if (real.length === 1) {
        current = real[0];
        continue;
      }
    }
    break;
  }
  return isObject(current) ? current : {};
}

/** A schema as a short type, like `waterflow nodes show`: string, list[integer], 'bash' | 'sh'. */
export function typeText(schema, root, depth = 0) {
  if (!isObject(schema)) return "any";
  if (depth > MAX_DEPTH) return "...";
  if (typeof schema.$ref === "string") return typeText(resolveRef(schema.$ref, root), root, depth + 1);
  if ("const" in schema) return literal(schema.const);
  if (Array.isArray(schema.enum)) return schema.enum.slice(0, MAX_MEMBERS).map(literal).join(" | ");
  for (const key of ["anyOf", "oneOf", "allOf"]) {
    if (Array.isArray(schema[key])) {
      let shown = schema[key].slice(0, MAX_MEMBERS).map((m) => typeText(m, root, depth + 1));
      const real = shown.filter((t) => t !== "null");
      if (real.length) shown = real;
      return [...new Set(shown)].join(" | ");
    }
  }
  if (schema.type === "array") return `list[${typeText(schema.items || {}, root, depth + 1)}]`;
  if (schema.type === "object") {
    // A nested model: its name (BasicAuth); its fields are listed below it.
    if (isObject(schema.properties)) return typeof schema.title === "string" && schema.title ? schema.title : "object";
    return isObject(schema.additionalProperties)
      ? `mapping[${typeText(schema.additionalProperties, root, depth + 1)}]`
      : "mapping";
  }
  if (typeof schema.type === "string") return schema.type;
  if (Array.isArray(schema.type)) return schema.type.slice(0, MAX_MEMBERS).join(" | ");
  return "any";
}

function nullable(schema) {
  const members = isObject(schema) ? schema.anyOf || schema.oneOf : null;
  return Array.isArray(members) && members.some((m) => isObject(m) && m.type === "null");
}

/** min/max/length/pattern/format of a (resolved) schema, as words. */
function constraints(schema) {
  const words = [];
  const add = (key, label) => {
    if (schema[key] !== undefined && typeof schema[key] !== "object") words.push(`${label} ${schema[key]}`);
  };
  add("minimum", "min");
  add("exclusiveMinimum", ">");
  add("maximum", "max");
  add("exclusiveMaximum", "<");
  add("minLength", "min length");
  add("maxLength", "max length");
  add("minItems", "min items");
  add("maxItems", "max items");
  add("pattern", "pattern");
  add("format", "format");
  return words;
}

/** Allowed values of a property: its enum or const, or those of its anyOf members. */
function enumValues(schema, root) {
  const found = [];
  const visit = (item, depth) => {
    if (!isObject(item) || depth > MAX_DEPTH) return;
    if (typeof item.$ref === "string") return visit(resolveRef(item.$ref, root), depth + 1);
    // A bounded loop, never push(...enum): spreading a huge array overflows the call stack.
    if (Array.isArray(item.enum)) {
      for (const value of item.enum) {
        if (found.length >= MAX_ENUM_VALUES) break;
        found.push(value);
      }
    } else if ("const" in item && found.length < MAX_ENUM_VALUES) found.push(item.const);
    for (const key of ["anyOf", "oneOf"]) {
      if (Array.isArray(item[key])) item[key].slice(0, MAX_MEMBERS).forEach((m) => visit(m, depth + 1));
    }
    return undefined;
  };
  visit(schema, 0);
  return found;
}

/** Object variants of a property (`oneOf: [BasicAuth, BearerAuth]`) to document one by one. */
function variants(schema, root) {
  const members = schema.anyOf || schema.oneOf;
  if (!Array.isArray(members)) {
    return [];
  }
  const out = [];
  for (const member of members.slice(0, MAX_MEMBERS)) {
    const inner = isObject(member) && !member.$ref && (member.oneOf || member.anyOf);
    const list = Array.isArray(inner) ? inner.slice(0, MAX_MEMBERS) : [member];
    for (const item of list) {
      const resolved = deref(item, root);
      if (isObject(resolved.properties)) out.push(resolved);
    }
  }
  return out.length > 1 ? out : [];
}

function propertiesOf(schema) {
  const properties = isObject(schema.properties) ? schema.properties : {};
  const required = new Set(Array.isArray(schema.required) ? schema.required.map(String) : []);
  return { properties, required };
}

/**
 * Documentation rows of an object schema: one per property, nested objects' properties
 * below their parent (`auth.username`), required ones first. `budget.left` bounds the rows of
 * the whole table, however wide and deep the schema.
 */
function schemaRows(schema, root, prefix = "", depth = 0, refs = new Set(), budget = { left: MAX_ROWS }) {
  const rows = [];
  const object = deref(schema, root);
  const { properties, required } = propertiesOf(object);
  const names = Object.keys(properties).sort((a, b) => Number(required.has(b)) - Number(required.has(a)));
  for (const name of names) {
    if (budget.left <= 0) break;
    budget.left -= 1;
    const prop = isObject(properties[name]) ? properties[name] : {};
    const resolved = deref(prop, root);
    const path = `${prefix}${name}`;
    const notes = constraints(resolved);
    if (nullable(prop)) notes.push("may be null");
    rows.push({
      path,
      depth,
      type: cut(typeText(prop, root), MAX_TYPE),
      required: required.has(name),
      hasDefault: "default" in prop,
      defaultValue: prop.default,
      description: String(prop.description ?? resolved.description ?? ""),
      values: enumValues(prop, root),
      notes,
    });
    if (depth + 1 >= MAX_DEPTH) continue;
    const ref = typeof prop.$ref === "string" ? prop.$ref : null;
    if (ref && refs.has(ref)) continue; // a recursive schema: documented once
    const seen = ref ? new Set([...refs, ref]) : refs;
    const alternatives = variants(prop, root);
    if (alternatives.length) {
      for (const variant of alternatives) {
        const title = variant.title || typeText(variant, root);
        rows.push({ variant: `${path}: ${title}`, depth: depth + 1, description: String(variant.description || "") });
        rows.push(...schemaRows(variant, root, `${path}.`, depth + 1, seen, budget));
      }
    } else if (isObject(resolved.properties)) {
      rows.push(...schemaRows(resolved, root, `${path}.`, depth + 1, seen, budget));
    } else if (resolved.type === "array" && isObject(deref(resolved.items, root).properties)) {
      rows.push(...schemaRows(resolved.items, root, `${path}[].`, depth + 1, seen, budget));
    } else if (isObject(resolved.additionalProperties) && isObject(deref(resolved.additionalProperties, root).properties)) {
      rows.push(...schemaRows(resolved.additionalProperties, root, `${path}.<key>.`, depth + 1, seen, budget));
    }
  }
  return rows;
}

function schemaTable(schema, testid, withRequired) {
  if (!isObject(schema)) return h("p", { class: "muted" }, "Not known here.");
  const rows = schemaRows(schema, schema);
  if (!rows.length) return h("p", { class: "muted", testid }, "(none)");
  const body = h("tbody");
  for (const row of rows) {
    if (row.variant) {
      body.appendChild(
        h("tr", { class: "schema-variant" },
          h("td", { colspan: withRequired ? "5" : "3", class: `schema-depth-${Math.min(row.depth, MAX_DEPTH)}` },
            h("span", { class: "muted" }, "one form of "), h("span", { class: "mono" }, row.variant),
            row.description ? h("span", { class: "muted" }, ` — ${row.description}`) : null)),
      );
      continue;
    }
    const description = h("td", { class: "schema-description" }, row.description);
    if (row.values.length) {
      description.appendChild(h("div", { class: "schema-values" }, "one of: ",
        row.values.map((value, i) => [i ? ", " : "", h("code", {}, literal(value))])));
    }
    if (row.notes.length) description.appendChild(h("div", { class: "muted small" }, row.notes.join(", ")));
    body.appendChild(
      h(
        "tr",
        { testid: "schema-field", "data-field": row.path },
        h("td", { class: `mono nowrap schema-depth-${Math.min(row.depth, MAX_DEPTH)}` }, row.path),
        h("td", { class: "mono" }, row.type),
        withRequired ? h("td", {}, row.required ? h("strong", {}, "yes") : "no") : null,
        withRequired ? h("td", { class: "mono" }, row.hasDefault ? cut(JSON.stringify(row.defaultValue) ?? "null", 200) : "—") : null,
        description,
      ),
    );
  }
  const head = withRequired
    ? ["Field", "Type", "Required", "Default", "Description"]
    : ["Field", "Type", "Description"];
  return h(
    "table",
    { class: "data schema", testid },
    h("thead", {}, h("tr", {}, head.map((title) => h("th", {}, title)))),
    body,
  );
}

// -- the usage example ----------------------------------------------------------------------

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const PLAIN_TEXT = /^[A-Za-z][A-Za-z0-9_./@-]*$/;
const YAML_WORDS = new Set(["true", "false", "yes", "no", "on", "off", "null", "y", "n"]);

function yamlKey(key) {
  return PLAIN_KEY.test(key) ? key : JSON.stringify(key);
}

function yamlScalar(value) {
  if (typeof value === "string") {
    // Plain when YAML cannot read it as anything but this text; else double-quoted (JSON is valid YAML).
    return PLAIN_TEXT.test(value) && !YAML_WORDS.has(value.toLowerCase()) ? value : JSON.stringify(value);
  }
  if (Array.isArray(value)) return value.length ? null : "[]";
  if (isObject(value)) return Object.keys(value).length ? null : "{}";
  return JSON.stringify(value);
}

/** `value` as YAML lines at `indent` (mappings and lists in block style, scalars as JSON). */
function yamlLines(value, indent) {
  const pad = " ".repeat(indent);
  const lines = [];
  if (Array.isArray(value)) {
    for (const item of value) {
      const scalar = yamlScalar(item);
      if (scalar !== null) lines.push(`${pad}- ${scalar}`);
      else {
        const inner = yamlLines(item, indent + 2);
        lines.push(`${pad}- ${inner[0].trimStart()}`, ...inner.slice(1));
      }
    }
    return lines;
  }
  for (const [key, item] of Object.entries(value)) {
    const scalar = yamlScalar(item);
    if (scalar !== null) lines.push(`${pad}${yamlKey(key)}: ${scalar}`);
    else lines.push(`${pad}${yamlKey(key)}:`, ...yamlLines(item, indent + 2));
  }
  return lines;
}

/** A value that fits `schema`: its first allowed value, or an empty one of its type. */
function exampleValue(name, schema, root, depth, budget) {
  const resolved = deref(schema, root);
  const values = enumValues(schema, root);
  if (values.length) return values[0];
  if ("default" in resolved) return resolved.default;
  if (depth > MAX_DEPTH) return null;
  const type = Array.isArray(resolved.type) ? resolved.type[0] : resolved.type;
  if (type === "object" || isObject(resolved.properties)) return exampleObject(resolved, root, depth + 1, budget);
  if (type === "array") {
    const item = exampleValue(name, resolved.items || {}, root, depth + 1, budget);
    return item === null ? [] : [item];
  }
  if (type === "integer" || type === "number") return resolved.minimum ?? 0;
  if (type === "boolean") return false;
  if (type === "null") return null;
  if (/url$/i.test(name)) return "https://example.com/";
  if (name === "uses") return "exec/shell"; // a nested step (flow/loop, flow/condition)
  const variant = variants(schema, root)[0];
  if (variant) return exampleObject(variant, root, depth + 1, budget);
  const members = resolved.anyOf || resolved.oneOf;
  if (Array.isArray(members) && isObject(members[0]) && !type) {
    // Several forms (a list or an expression): the first one's.
    return exampleValue(name, members[0], root, depth + 1, budget);
  }
  return `<${name}>`;
}

function exampleObject(schema, root, depth, budget = { left: MAX_EXAMPLE_VALUES }) {
  const { properties, required } = propertiesOf(deref(schema, root));
  const out = [];
  for (const name of Object.keys(properties)) {
    if (!required.has(name) || budget.left <= 0) continue;
    budget.left -= 1;
    out.push([name, exampleValue(name, properties[name], root, depth, budget)]);
  }
  // fromEntries defines own properties: a property named `__proto__` is kept like any other.
  return Object.fromEntries(out);
}

/** A whole workflow with one step using the node, its required inputs filled in. */
export function usageExample(node) {
  const pin = major(node.version);
  const step = { uses: pin ? `${node.type}@${pin}` : node.type };
  if (isObject(node.inputs_schema)) {
    const inputs = exampleObject(node.inputs_schema, node.inputs_schema, 0);
    if (Object.keys(inputs).length) step.with = inputs;
  }
  const group = (node.groups && node.groups[0]) || "local";
  const slug = node.type.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "").toLowerCase() || "node";
  const workflow = { name: `try-${slug}`, jobs: { main: { "runs-on": group, steps: [step] } } };
  return `${yamlLines(workflow, 0).join("\n")}\n`;
}

// -- pages ------------------------------------------------------------------------------------

function where(node) {
  if (node.workflow_side) return "in the workflow (no agent needed)";
  const agents = node.agents || [];
  if (!agents.length) return "installed on the server; no live agent announces it";
  return `agents: ${agents.join(", ")} · groups: ${(node.groups || []).join(", ") || "—"}`;
}

function nodeHref(type) {
  return `#/nodes/${encodeURIComponent(type)}`;
}

function renderList(root, nodes, query) {
  const search = h("input", {
    type: "search",
    testid: "nodes-search",
    placeholder: "Filter by type or description",
    "aria-label": "Filter node types",
    value: query.get("q") || "",
  });
  const body = h("tbody");
  const list = h(
    "table",
    { class: "data", testid: "nodes-list" },
    h("thead", {}, h("tr", {}, h("th", {}, "Type"), h("th", {}, "Version"), h("th", {}, "Description"),
      h("th", {}, "Where it runs"))),
    body,
  );
  const fill = () => {
    const needle = search.value.trim().toLowerCase();
    clear(body);
    const shown = nodes.filter((node) =>
      !needle || node.type.toLowerCase().includes(needle) || String(node.description || "").toLowerCase().includes(needle));
    for (const node of shown) {
      body.appendChild(
        h(
          "tr",
          {
            class: "clickable",
            testid: "node-entry",
            "data-node": node.type,
            "data-version": node.version,
            onclick: () => {
              location.hash = nodeHref(node.type);
            },
          },
          h("td", { class: "mono nowrap" }, h("a", { href: nodeHref(node.type) }, node.type)),
          h("td", { class: "mono" }, node.version),
          h("td", {}, String(node.description || "").split("\n")[0]),
          h("td", { class: "small muted" }, where(node)),
        ),
      );
    }
    if (!shown.length) {
      body.appendChild(h("tr", {}, h("td", { colspan: "4", class: "empty", testid: "nodes-empty" },
        nodes.length ? "No node type matches." : "No node types are known to the server.")));
    }
  };
  search.oninput = () => {
    const text = search.value.trim();
    history.replaceState(null, "", `#/nodes${text ? `?${new URLSearchParams({ q: text })}` : ""}`);
    fill();
  };
  root.appendChild(
    h("section", { class: "nodes-page" },
      h("div", { class: "toolbar" }, h("h1", {}, "Nodes"), h("span", { class: "grow" }), search),
      list),
  );
  fill();
}

/** Ask the server whether the example is a valid workflow; list what it still lacks if not. */
async function checkExample(api, example, slot) {
  try {
    await api.post("/v1/validate", { workflow: example });
  } catch (exc) {
    const problems = exc && exc.body && Array.isArray(exc.body.errors) ? exc.body.errors : [];
    if (!slot.isConnected || !problems.length) return;
    slot.appendChild(h("div", { class: "note", testid: "node-example-problems" },
      "This skeleton is not a valid step as it stands; the server says:",
      h("ul", {}, problems.map((item) => h("li", {}, `${item.line}:${item.column}: ${item.message}`)))));
  }
}

function renderDoc(node, others, api) {
  const example = usageExample(node);
  const problems = h("div");
  checkExample(api, example, problems);
  const tryIt = h("button", {
    type: "button",
    testid: "node-try",
    onclick: () => {
      try {
        sessionStorage.setItem(DRAFT_KEY, JSON.stringify(example));
      } catch {
        // storage full or off: the example is still on the page to copy
      }
      location.hash = "#/submit";
    },
  }, "Open in Submit");
  return h(
    "article",
    { class: "node-doc", testid: "node-doc", "data-node": node.type, "data-version": node.version },
    h("h2", {}, "Version ", h("span", { testid: "node-version" }, node.version)),
    h("p", { class: "node-description" }, node.description || ""),
    others.length
      ? h("p", { class: "muted small" }, `Other major versions: ${others.join(", ")} (pin one with uses: ${node.type}@<major>)`)
      : null,
    h("p", { class: "small", testid: "node-where" }, where(node)),
    h("h3", {}, "Inputs (with:)"),
    isObject(node.inputs_schema)
      ? schemaTable(node.inputs_schema, "node-inputs", true)
      : h("p", { class: "muted", testid: "node-inputs" },
        "Not known here: the server does not have this node installed, only agents announce it " +
          "(`waterflow nodes show --local` where it is installed lists them)."),
    h("h3", {}, "Outputs (steps.<id>.outputs)"),
    isObject(node.outputs_schema)
      ? schemaTable(node.outputs_schema, "node-outputs", false)
      : h("p", { class: "muted", testid: "node-outputs" }, "Not known here."),
    h("h3", {}, "Example"),
    h("pre", { class: "node-example", testid: "node-example" }, example),
    problems,
    h("div", { class: "actions left" }, tryIt),
  );
}

export async function mount(root, params, ctx) {
  const query = params.query || new URLSearchParams();
  // Everything goes into this element: if the user leaves while the catalog loads, the router
  // has removed it and nothing lands on the next page.
  const page = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  root.appendChild(page);
  const catalog = await ctx.api.get("/v1/nodes");
  if (!page.isConnected) return undefined;
  clear(page);
  const nodes = Array.isArray(catalog && catalog.nodes) ? catalog.nodes : [];
  if (params.id === undefined) {
    renderList(page, nodes, query);
    return undefined;
  }
  const matching = nodes.filter((node) => node.type === params.id);
  const back = h("p", {}, h("a", { href: "#/nodes" }, "← All nodes"));
  if (!matching.length) {
    page.appendChild(h("section", {}, back,
      h("div", { class: "error-box", testid: "node-missing" }, `No node type ${params.id} is known to the server.`)));
    return undefined;
  }
  const wanted = query.get("version");
  const versions = matching.map((node) => node.version);
  const shown = matching.filter((node) => !wanted || major(node.version) === major(wanted));
  page.appendChild(
    h("section", { class: "nodes-page" }, back, h("h1", {}, params.id),
      (shown.length ? shown : matching).map((node) =>
        renderDoc(node, versions.filter((v) => v !== node.version), ctx.api))),
  );
  return undefined;
}
