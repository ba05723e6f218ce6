// The chat panel: messages exist only in the open pages (nothing is stored anywhere).

import { $, el } from "./dom.js";
import { peerLabel } from "../names.js";

const MAX_SHOWN = 500;

export class ChatPanel {
  /** @param {(text: string) => boolean} send */
  constructor({ send, toggleButton }) {
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

  /** Show a message ({from, text, at, mine}). */
  add({ from, text, at, mine }) {
    const when = new Date((Number(at) || Date.now() / 1000) * 1000);
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const item = el("li", { className: mine ? "msg mine" : "msg" },
      el("span", { className: "who", text: mine ? "You" : peerLabel(from) }),
      el("time", { className: "when", dateTime: when.toISOString(), text: time }),
      el("p", { className: "text", text }));
    const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    this.log.append(item);
    while (this.log.children.length > MAX_SHOWN) this.log.firstElementChild.remove();
    if (atBottom || mine) this.log.scrollTop = this.log.scrollHeight;
    if (!this.open && !mine) {
      this.unread += 1;
      this._badge();
    }
  }

  _badge() {
    this.badge.hidden = this.unread === 0;
    this.badge.textContent = this.unread > 9 ? "9+" : String(this.unread);
  }
}
