// The /privacy page: renders the beacon's fields from the metrics service's JSON Schema
// (GET {metrics_url}/beacon/schema), the same pydantic schema the server validates with.

import { beaconsAllowed } from "./beacon.js"; // the call client's own rule, not a copy

const $ = (id) => document.getElementById(id);

/** The possible values of one JSON Schema property, as text. */
export function valuesOf(prop, defs = {}) {
  if (!prop) return "";
  if (prop.$ref) return valuesOf(defs[prop.$ref.split("/").pop()], defs);
  if (Array.isArray(prop.enum)) return prop.enum.map(String).join(", ");
  if (prop.const !== undefined) return String(prop.const);
  if (Array.isArray(prop.anyOf)) {
    const parts = prop.anyOf.map((p) => (p.type === "null" ? "absent" : valuesOf(p, defs)));
    return parts.filter(Boolean).join(", ");
  }
  if (prop.type === "boolean") return "yes, no";
  if (prop.type === "integer") {
    const lo = prop.minimum ?? "", hi = prop.maximum ?? "";
    return lo !== "" || hi !== "" ? `a whole number ${lo}–${hi}` : "a whole number";
  }
  if (prop.type === "string" && prop.format === "date") return "a date (YYYY-MM-DD)";
  if (prop.type === "string" && prop.pattern) return "random text (see meaning)";
  return prop.type || "";
}

function row(tbody, name, values, meaning, required) {
  const tr = document.createElement("tr");
  const th = document.createElement("th");
  th.scope = "row";
  const code = document.createElement("code");
  code.textContent = name;
  th.append(code);
  if (required) {
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = "always";
    th.append(" ", tag);
  }
  const tdValues = document.createElement("td");
  tdValues.textContent = values;
  tdValues.dataset.label = "Possible values"; // shown on phones, where rows become cards
  const tdMeaning = document.createElement("td");
  tdMeaning.textContent = meaning || "";
  tdMeaning.dataset.label = "Meaning";
  tr.append(th, tdValues, tdMeaning);
  tbody.append(tr);
}

/** Fill the page's tables from a beacon JSON Schema. */
export function renderSchema(schema, doc = document) {
  const defs = schema.$defs || {};
  const required = new Set(schema.required || []);
  const fields = doc.getElementById("fields");
  const tbody = fields.querySelector("tbody");
  tbody.replaceChildren();
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    row(tbody, name, valuesOf(prop, defs), prop.description, required.has(name));
  }
  fields.hidden = false;
  const derived = doc.getElementById("derived");
  const dbody = derived.querySelector("tbody");
  dbody.replaceChildren();
  const x = schema["x-parley-derived"] || { properties: {} };
  for (const [name, prop] of Object.entries(x.properties || {})) {
    row(dbody, name, valuesOf(prop, defs), prop.description, false);
  }
  derived.hidden = false;
  const never = doc.getElementById("never-stored");
  never.replaceChildren(...(schema["x-parley-never-stored"] || []).map((t) => {
    const li = doc.createElement("li");
    li.textContent = t;
    return li;
  }));
  const hours = schema["x-parley-raw-max-age-hours"];
  const days = schema["x-parley-aggregate-retention-days"];
  doc.getElementById("retention-note").textContent =
    `Each summary is kept as sent for at most ${hours} hours, then only as one more count ` +
    `in a day's totals, which are kept ${days} days.`;
}

async function main() {
  const state = beaconsAllowed();
  $("beacon-state").textContent = state.ok
    ? "This browser currently sends a usage summary at the end of a call."
    : `This browser currently sends nothing: ${state.why}.`;
  let config;
  try {
    const r = await fetch("/config.json", { cache: "no-store" });
    config = await r.json();
  } catch {
    $("schema-status").textContent = "The server cannot be reached.";
    return;
  }
  // the security.txt link only when the operator published one (else it is a 404)
  if (config.security_txt) $("security-section").hidden = false;
  if (!config.metrics_url) {
    $("schema-status").textContent =
      "This server collects no usage statistics: no summary is ever sent.";
    return;
  }
  const base = config.metrics_url.replace(/\/+$/, "");
  const link = $("schema-link");
  link.href = `${base}/beacon/schema`;
  link.hidden = false;
  try {
    const r = await fetch(`${base}/beacon/schema`, { cache: "no-store", credentials: "omit" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    renderSchema(await r.json());
    $("schema-status").hidden = true;
  } catch {
    $("schema-status").textContent = "The metrics service did not answer; try again later.";
  }
}

if (typeof document !== "undefined" && document.getElementById("fields")) main();
