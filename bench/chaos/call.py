"""A call of two headless Chromium pages (fake camera and microphone) and what a person in
it would notice: video frames advancing, chat going through, the page's own states."""

from __future__ import annotations

import secrets
from typing import Any, Final

from playwright.sync_api import Page

from tests.e2e import pages as ui
import contextlib

MEDIA_WINDOW_MS: Final[int] = 600
CHAT_WAIT_MS: Final[int] = 2000

_FRAMES: Final[str] = """async () => {
  let n = 0;
  for (const pc of Object.values(window.parley.connections())) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") n += s.framesDecoded || 0; });
  }
  return n; }"""

_STATE: Final[str] = """() => {
  const info = window.parley.info();
  const tiles = [...document.querySelectorAll(".tile[data-state]")]
    .map((t) => t.getAttribute("data-state"));
  const leave = [...document.querySelectorAll("button")].some(
    (b) => b.textContent.trim() === "Leave" && b.offsetParent !== null);
  return { signaling: info ? info.signalingState : null, tiles, inCall: leave }; }"""


class Call:
    """Two pages in one room: `a` started it (its owner), `b` joined by the link."""

    def __init__(self, new_page: Any, base_url: str) -> None:
        self.a: Page = new_page()
        self.b: Page = new_page()
        self.room_url = ui.start_call(self.a, base_url)
        self.room = self.room_url.rsplit("/", 1)[1]
        ui.join(self.a)
        b_id = ui.join(self.b, self.room_url)
        a_id = str(self.a.evaluate("() => window.parley.peerId()"))
        ui.wait_for_video_from(self.a, b_id)
        ui.wait_for_video_from(self.b, a_id)
        for page in (self.a, self.b):
            ui.button(page, "Chat").click()

    @property
    def pages(self) -> tuple[Page, Page]:
        return self.a, self.b

    def lock(self, password: str) -> None:
        """The owner locks the room from the menu, and both pages show it."""
        if not ui.button(self.a, "Lock room").is_visible():  # narrow: it is under "More"
            ui.button(self.a, "More").click()
        ui.button(self.a, "Lock room").click()
        dialog = self.a.get_by_role("dialog", name="Lock this room")
        dialog.get_by_label("Password").fill(password)
        dialog.get_by_role("button", name="Lock").click()
        for page in self.pages:
            page.locator("#lock-state").filter(has_text="Locked").wait_for(timeout=10_000)

    def media_flows(self) -> bool:
        """Remote video frames advance on both pages within MEDIA_WINDOW_MS."""
        try:
            before = [int(p.evaluate(_FRAMES)) for p in self.pages]
            self.a.wait_for_timeout(MEDIA_WINDOW_MS)
            after = [int(p.evaluate(_FRAMES)) for p in self.pages]
        except Exception:
            return False
        return all(n > m for n, m in zip(after, before, strict=True))

    def chat_round_trips(self) -> bool:
        """A chat line from each page reaches the other within CHAT_WAIT_MS."""
        for sender, receiver in ((self.a, self.b), (self.b, self.a)):
            text = f"probe {secrets.token_hex(3)}"
            try:
                box = sender.get_by_label("Message")
                box.fill(text, timeout=CHAT_WAIT_MS)
                box.press("Enter", timeout=CHAT_WAIT_MS)
                receiver.locator("#chat-log").filter(has_text=text).wait_for(
                    state="attached", timeout=CHAT_WAIT_MS)
            except Exception:
                return False
        return True

    def seen(self) -> list[str]:
        """What a person would notice on either page right now (empty: nothing)."""
        out: list[str] = []
        for page in self.pages:
            try:
                state = page.evaluate(_STATE)
            except Exception:
                out.append("page not answering")
                continue
            if not state["inCall"]:
                out.append("call ended")
            if state["signaling"] not in (None, "open"):
                out.append(f"signalling {state['signaling']}")
            out += [f"tile '{s}'" for s in state["tiles"] if s != "connected"]
        return out

    def close(self) -> None:
        for page in self.pages:
            with contextlib.suppress(Exception):
                page.context.close()
