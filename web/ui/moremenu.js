// The "More" menu of the call's control bar: on narrow screens the less used buttons
// (share screen, copy link, lock, devices, shortcuts) fold into it so that every label fits
// unbroken; on wide screens the toggle is hidden and those buttons sit in the bar.

import { $ } from "./dom.js";

export class MoreMenu {
  constructor() {
    this.menu = $("more-menu");
    this.toggleButton = $("btn-more");
    this.toggleButton.addEventListener("click", () => this.toggle());
    // Choosing an item closes the menu (the item's own handler runs first).
    this.menu.addEventListener("click", (event) => {
      if (event.target.closest("button")) this.toggle(false, { focus: false });
    });
    this.menu.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.toggle(false);
    });
    this._outside = (event) => {
      if (this.open && !this.menu.contains(event.target) && !this.toggleButton.contains(event.target)) {
        this.toggle(false, { focus: false });
      }
    };
    document.addEventListener("pointerdown", this._outside);
  }

  get open() {
    return this.menu.classList.contains("open");
  }

  toggle(open = !this.open, { focus = true } = {}) {
    this.menu.classList.toggle("open", open);
    this.toggleButton.setAttribute("aria-expanded", String(open));
    this.toggleButton.classList.toggle("on", open);
    if (open) {
      const first = [...this.menu.querySelectorAll("button")].find((b) => !b.hidden);
      if (first) first.focus();
    } else if (focus) {
      this.toggleButton.focus();
    }
  }

  destroy() {
    document.removeEventListener("pointerdown", this._outside);
    this.toggle(false, { focus: false });
  }
}
