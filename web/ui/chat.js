// The chat panel: messages exist only in the open pages (nothing is stored anywhere).

import { $, el } from "./dom.js";

const MAX_SHOWN = 500;

export class ChatPanel {
  /**
   * @param {(text: string) => boolean} send  also sends a "not sent" line again (Retry)
   * @param {(id: string) => string} nameOf  the current label of a peer id (mine: "self")
   */
  constructor({ send, toggleButton, nameOf }) {
    this.nameOf = nameOf;
    this.send = send;
    this.panel = $("chat");
    this.log = $("chat-log");
    this.form = $("chat-form");
    this.input = $("chat-input");
    this.button = toggleButton;
    this.badge = $("chat-unread");
    this.unread = 0;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (send(this.input.value)) this.input.value = "";
      this.input.focus();
    });
    this.button.addEventListener("click", () => this.toggle());
    $("chat-close").addEventListener("click", () => this.toggle(false));
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.toggle(false);
    });
  }

  get open() {
    return !this.panel.hidden;
  }

  toggle(open = !this.open) {
    this.panel.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
    this.button.classList.toggle("on", open);
    document.body.classList.toggle("chat-open", open);
    if (open) {
      this.unread = 0;
      this._badge();
      this.input.focus();
      this.log.scrollTop = this.log.scrollHeight;
    } else {
      this.button.focus();
    }
    window.dispatchEvent(new Event("resize"));
  }

  /** Show a message ({from, text, at, mine, queued, id}). */
  add({ from, text, at, mine, queued = false, id = null }) {
    const when = new Date((Number(at) || Date.now() / 1000) * 1000);
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const item = el("li", { className: mine ? "msg mine" : "msg" },
      el("span", { className: "who", dataset: { from: mine ? "self" : from },
        text: this._who(mine ? "self" : from) }),
      el("time", { className: "when", dateTime: when.toISOString(), text: time }),
      el("p", { className: "text", text }),
      queued ? el("span", { className: "state", text: "not sent" }) : null);
    if (queued) item.classList.add("unsent");
    if (mine && id) item.dataset.chatId = id;
    const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    this.log.append(item);
    while (this.log.children.length > MAX_SHOWN) this.log.firstElementChild.remove();
    if (atBottom || mine) this.log.scrollTop = this.log.scrollHeight;
    if (!this.open && !mine) {
      this.unread += 1;
      this._badge();
      // The log is hidden while the panel is closed: announce the line elsewhere.
      $("chat-announce").textContent = `New message from ${this._who(from)}: ${text}`;
    }
  }

  /** Names changed (chosen, numbered): show everyone's current one. */
  relabel() {
    for (const who of this.log.querySelectorAll(".who[data-from]")) who.textContent = this._who(who.dataset.from);
  }

  _mine(id) {
    return [...this.log.querySelectorAll(".msg.mine[data-chat-id]")].find((m) => m.dataset.chatId === id);
  }

  /** The server acknowledged my line `id`: it is no longer "not sent". */
  markAcked(id) {
    const item = this._mine(id);
    if (!item) return;
    item.classList.remove("unsent");
    item.querySelector(".state")?.remove();
  }

  /** My line `id` could not be sent: say so for good, and offer to send it again. */
  markFailed(id, text) {
    const item = this._mine(id);
    if (!item) return;
    item.classList.add("unsent", "failed");
    item.querySelector(".state")?.remove();
    const retry = el("button", { type: "button", className: "retry", text: "Retry" });
    retry.setAttribute("aria-label", `Send again: ${text}`);
    retry.addEventListener("click", () => {
      if (this.send(text)) item.remove();
    });
    item.append(el("span", { className: "state" }, "not sent ", retry));
  }

  _who(id) {
    return id === "self" ? `${this.nameOf("self")} (you)` : this.nameOf(id);
  }

  _badge() {
    this.badge.hidden = this.unread === 0;
    this.badge.textContent = this.unread > 9 ? "9+" : String(this.unread);
    // The unread count is part of the button's name ("Chat, 2 unread").
    if (this.unread) this.button.setAttribute("aria-label", `Chat, ${this.unread} unread`);
    else this.button.removeAttribute("aria-label");
  }
}
