// Small DOM helpers shared by the views: lookup, view switching, button labels, toasts.

/** The element with id `id` (throws if the page lacks it: a bug, not a user error). */
export function $(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} missing from index.html`);
  return node;
}

/** Create an element: el("p", {className: "x", text: "hi"}, child...). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && !key.startsWith("aria")) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

/** An inline icon from the sprite in index.html. */
export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#i-${name}`);
  svg.append(use);
  return svg;
}

const VIEWS = ["landing", "prejoin", "call", "ended"];

/** Show one view (section) and hide the others. */
export function showView(name) {
  document.getElementById("boot")?.remove();
  for (const view of VIEWS) $(view).hidden = view !== name;
  document.body.dataset.view = name;
}

/**
 * Set a control button's visible label (which is its accessible name) and icon.
 * `pressed` only styles it (the label already says the state).
 */
export function setButton(button, { label, iconName, active = null }) {
  button.querySelector(".label").textContent = label;
  if (iconName) button.querySelector("use").setAttribute("href", `#i-${iconName}`);
  if (active !== null) button.classList.toggle("off", !active);
}

/** A short message at the bottom of the screen, read out by screen readers. */
export function toast(text, { kind = "info", ms = 3500 } = {}) {
  const box = $("toasts");
  const item = el("p", { className: `toast ${kind}`, text });
  box.append(item);
  setTimeout(() => {
    item.classList.add("leaving");
    setTimeout(() => item.remove(), 300);
  }, ms);
}
