// The landing page: "Start a call" (a fresh random room) or join a room by its name.

import * as api from "../api.js";
import { $, showView } from "./dom.js";

// The same rule as the server (services/common/roomnames.py), to catch typos early.
const ROOM_NAME = /^[\p{L}\p{N}_][\p{L}\p{N}_.-]{0,63}$/u;

/** Normalise what a person typed (or pasted: a whole link works too) into a room name. */
export function roomFromInput(raw) {
  let text = String(raw || "").trim();
  try {
    const url = new URL(text);
    text = decodeURIComponent(url.pathname.replace(/^\/+/, "").split("/")[0] || "");
  } catch {
    // not a link: a bare name
  }
  return text.normalize("NFKC").toLowerCase();
}

export function showLanding() {
  showView("landing");
  const start = $("start-call");
  const form = $("join-form");
  const input = $("room-input");
  const error = $("landing-error");

  start.addEventListener("click", async () => {
    start.disabled = true;
    start.setAttribute("aria-busy", "true");
    error.textContent = "";
    try {
      const room = await api.createRoom();
      location.assign(`/${encodeURIComponent(room.name)}`);
    } catch (err) {
      error.textContent = err.status === 429
        ? "Too many new rooms from here just now. Wait a minute and try again."
        : `Could not start a call: ${err.message}`;
      start.disabled = false;
      start.removeAttribute("aria-busy");
    }
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = roomFromInput(input.value);
    if (!name) {
      error.textContent = "Type the name of a room, or start a new call.";
    } else if (!ROOM_NAME.test(name)) {
      error.textContent =
        "Room names use letters, digits, '-', '_' and '.', start with a letter or digit, and are at most 64 characters.";
    } else {
      location.assign(`/${encodeURIComponent(name)}`);
      return;
    }
    input.setAttribute("aria-invalid", "true");
    input.focus();
  });
  input.addEventListener("input", () => {
    input.removeAttribute("aria-invalid");
    error.textContent = "";
  });
  start.focus();
}
