// The /stats page: inline-SVG bar charts from the metrics service's public, k-anonymous
// aggregates (GET {metrics_url}/stats.json). No library, no build step.

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function el(name, attrs = {}, text = "") {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text) node.textContent = text;
  return node;
}

const pct = (x) => `${(100 * x).toFixed(x > 0 && x < 0.1 ? 1 : 0)} %`;

/**
 * A horizontal bar chart as an <svg>: one bar per item, `value` scaled to `max`.
 * items: [{label, value, text}]
 */
export function barChart(title, items, { max = null } = {}) {
  const rowH = 28, labelW = 150, barW = 300, textW = 90;
  const height = Math.max(1, items.length) * rowH + 8;
  const top = max ?? Math.max(1, ...items.map((i) => i.value));
  const svg = el("svg", {
    viewBox: `0 0 ${labelW + barW + textW} ${height}`, role: "img", "aria-label": title,
    class: "chart", width: "100%",
  });
  svg.append(el("title", {}, title));
  items.forEach((item, n) => {
    const y = 4 + n * rowH;
    svg.append(el("text", { x: labelW - 8, y: y + 18, "text-anchor": "end", class: "label" },
      item.label));
    svg.append(el("rect", { x: labelW, y: y + 4, width: barW, height: rowH - 10, rx: 4,
      class: "track" }));
    const w = top > 0 ? Math.max(2, (barW * item.value) / top) : 0;
    svg.append(el("rect", { x: labelW, y: y + 4, width: w, height: rowH - 10, rx: 4,
      class: "bar" }));
    svg.append(el("text", { x: labelW + barW + 8, y: y + 18, class: "value" }, item.text));
  });
  return svg;
}

function section(title, report, items, note = "") {
  const box = document.createElement("section");
  box.className = "chart-box";
  const h = document.createElement("h2");
  h.textContent = title;
  box.append(h);
  if (items.length) {
    box.append(barChart(title, items));
  } else {
    const p = document.createElement("p");
    p.className = "note";
    p.textContent = "Not enough calls yet to show anything here.";
    box.append(p);
  }
  const s = report.suppressed || { rows: 0 };
  const foot = document.createElement("p");
  foot.className = "note";
  foot.textContent = (note ? `${note} ` : "") + (s.rows
    ? `${s.rows} smaller group${s.rows === 1 ? "" : "s"} withheld` +
      (s.sessions ? ` (${s.sessions} calls in total).` : ".")
    : "");
  box.append(foot);
  return box;
}

/** Build every chart from a /stats.json body. */
export function renderStats(body, root) {
  const r = body.reports;
  const families = r.families.rows;
  const charts = [
    section("Calls by browser", r.families,
      families.map((x) => ({ label: x.browser, value: x.sessions, text: String(x.sessions) }))),
    section("Connection failures by browser", r.families,
      families.map((x) => ({ label: x.browser, value: x.failure_rate, text: pct(x.failure_rate) })),
      "Share of calls that never connected."),
    section("Where failed connections stopped", r["failure-stages"],
      r["failure-stages"].rows.map((x) => ({
        label: x.failure_stage, value: x.sessions, text: String(x.sessions) }))),
    section("How connected calls travelled", r.candidates,
      r.candidates.rows.map((x) => ({
        label: { host: "direct (local)", srflx: "direct (via NAT)", prflx: "direct (peer)",
          relay: "relay (TURN)" }[x.local_candidate] || x.local_candidate,
        value: x.sessions, text: String(x.sessions) }))),
  ];
  const features = r.features.rows;
  for (const [key, label] of [["screen_share_share", "Screen sharing"],
    ["mute_use_share", "Mute/unmute used"], ["camera_off_share", "Camera turned off"],
    ["always_relay_share", "Always relay"]]) {
    charts.push(section(`${label}, share of calls`, r.features,
      features.map((x) => ({ label: x.browser, value: x[key], text: pct(x[key]) }))));
  }
  root.replaceChildren(...charts);
}

async function main() {
  let config;
  try {
    config = await (await fetch("/config.json", { cache: "no-store" })).json();
  } catch {
    $("stats-status").textContent = "The server cannot be reached.";
    return;
  }
  if (!config.metrics_url) {
    $("stats-status").textContent = "This server collects no usage statistics.";
    return;
  }
  const base = config.metrics_url.replace(/\/+$/, "");
  try {
    const r = await fetch(`${base}/stats.json`, { cache: "no-store", credentials: "omit" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const body = await r.json();
    for (const node of document.querySelectorAll(".k-value")) node.textContent = body.k;
    $("stats-status").textContent = `Period ${body.period}` +
      (body.epsilon ? ` · counts carry differential-privacy noise (ε = ${body.epsilon})` : "");
    renderStats(body, $("charts"));
  } catch {
    $("stats-status").textContent = "The statistics are not available right now.";
  }
}

if (typeof document !== "undefined" && document.getElementById("charts")) main();
