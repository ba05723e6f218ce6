// "Waiting for others": while nobody else is in the call, the stage shows the link with a
// Copy button and how many people the room takes.

import { $ } from "./dom.js";

export class AlonePanel {
  /**
   * @param {object} o
   * @param {string} o.link      the room's link
   * @param {number} o.capacity  people the room takes (rooms' join answer)
   * @param {(text: string) => Promise<boolean>} o.copy
   * @param {(text: string, opts?: object) => void} o.notify
   */
  constructor({ link, capacity, copy, notify }) {
    this.root = $("alone");
    const input = $("alone-link");
    input.value = link;
    input.addEventListener("focus", () => input.select());
    $("alone-text").textContent = capacity
      ? `Send this link to the people you want to talk to. Up to ${capacity} people can be in this call.`
      : "Send this link to the people you want to talk to.";
    this._onCopy = async () => {
      const ok = await copy(link);
      notify(ok ? "Link copied." : `Copy this link: ${link}`, { ms: ok ? 3000 : 10000 });
    };
    $("alone-copy").addEventListener("click", this._onCopy);
  }

  /** Show it while `alone`. */
  update(alone) {
    this.root.hidden = !alone;
  }

  destroy() {
    $("alone-copy").removeEventListener("click", this._onCopy);
    this.root.hidden = true;
  }
}
