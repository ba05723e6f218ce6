"""What a person does on a Parley page, and what the tests read back from it.

Helpers on playwright's sync `Page`: start or open a room, join, wait for a remote
participant's video frames, read `getStats()` through the `window.parley` hook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from playwright.sync_api import Page, expect

JOIN_TIMEOUT_MS: Final[int] = 20_000
MEDIA_TIMEOUT_MS: Final[int] = 30_000


def remote_video(peer_id: str) -> str:
    """CSS selector of the `<video>` showing `peer_id` (the product's test hook)."""
    return f'video[data-peer-id="{peer_id}"]'


def tile_of(peer_id: str) -> str:
    """CSS selector of the tile that holds `peer_id`'s video."""
    return f'.tile:has({remote_video(peer_id)})'


def start_call(page: Page, base_url: str) -> str:
    """Press "Start a call" on the landing page; return the new room's URL."""
    page.goto(f"{base_url}/")
    page.get_by_role("button", name="Start a call").click()
    page.wait_for_url(re.compile(r"^https?://[^/]+/[^/]+$"), timeout=JOIN_TIMEOUT_MS)
    return page.url


def open_room(page: Page, room_url: str) -> None:
    """Open a room's page (pre-join) and wait until "Join" is offered."""
    page.goto(room_url)
    expect(join_button(page)).to_be_visible(timeout=JOIN_TIMEOUT_MS)


def join_button(page: Page) -> Any:
    return page.get_by_role("button", name="Join", exact=True)


def button(page: Page, name: str) -> Any:
    """A button by its exact accessible name."""
    return page.get_by_role("button", name=name, exact=True)


def click_join(page: Page, password: str | None = None) -> None:
    """Type the password if given, then press "Join" (does not wait for the call)."""
    if password is not None:
        page.get_by_label("Room password").fill(password)
    join_button(page).click()


def join(page: Page, room_url: str | None = None, password: str | None = None) -> str:
    """Open `room_url` (unless already there), join, wait for the call view; return my peer id."""
    if room_url is not None:
        open_room(page, room_url)
    click_join(page, password)
    expect(button(page, "Leave")).to_be_visible(timeout=JOIN_TIMEOUT_MS)
    page.wait_for_function("() => window.parley.peerId() !== null", timeout=JOIN_TIMEOUT_MS)
    return str(page.evaluate("() => window.parley.peerId()"))


def wait_for_video_from(page: Page, peer_id: str, timeout: int = MEDIA_TIMEOUT_MS) -> None:
    """Wait until `peer_id`'s video on `page` has decoded frames (videoWidth > 0)."""
    page.wait_for_function(
        """(sel) => { const v = document.querySelector(sel);
                      return Boolean(v && v.videoWidth > 0 && v.readyState >= 2); }""",
        arg=remote_video(peer_id),
        timeout=timeout,
    )


def video_frame_callback_fires(page: Page, peer_id: str, timeout_ms: int = 10_000) -> bool:
    """Whether `requestVideoFrameCallback` on `peer_id`'s video reports a new frame."""
    return bool(page.evaluate(
        """([sel, ms]) => new Promise((resolve) => {
               const v = document.querySelector(sel);
               if (!v) return resolve(false);
               const t = setTimeout(() => resolve(false), ms);
               v.requestVideoFrameCallback((now, meta) => {
                   clearTimeout(t); resolve(meta.width > 0 && meta.height > 0); });
           })""",
        [remote_video(peer_id), timeout_ms],
    ))


def frames_decoded(page: Page, peer_id: str) -> int:
    """`framesDecoded` of the inbound video from `peer_id` (getStats), 0 if none yet."""
    return int(page.evaluate(
        """async (id) => {
               const pc = window.parley.connections()[id];
               if (!pc) return 0;
               let n = 0;
               (await pc.getStats()).forEach((s) => {
                   if (s.type === "inbound-rtp" && s.kind === "video") {
                       n += s.framesDecoded || 0; } });
               return n; }""",
        peer_id,
    ))


@dataclass(frozen=True)
class CandidatePair:
    """The ICE candidate pair a connection selected."""

    state: str
    local_type: str
    remote_type: str
    local_protocol: str


def selected_pair(page: Page, peer_id: str) -> CandidatePair | None:
    """The selected candidate pair of the connection to `peer_id`, from getStats()."""
    found = page.evaluate(
        """async (id) => {
               const pc = window.parley.connections()[id];
               if (!pc) return null;
               const stats = await pc.getStats();
               let pairId = null;
               stats.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId)
                                          pairId = s.selectedCandidatePairId; });
               let pair = pairId ? stats.get(pairId) : null;
               if (!pair) stats.forEach((s) => {
                   if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
                       pair = s; } });
               if (!pair) return null;
               const local = stats.get(pair.localCandidateId);
               const remote = stats.get(pair.remoteCandidateId);
               return { state: pair.state, local_type: local ? local.candidateType : "",
                        remote_type: remote ? remote.candidateType : "",
                        local_protocol: local ? local.protocol : "" }; }""",
        peer_id,
    )
    return CandidatePair(**found) if found else None


def connection_states(page: Page) -> dict[str, str]:
    """`connectionState` of every live RTCPeerConnection, by remote peer id."""
    return dict(page.evaluate(
        """() => Object.fromEntries(Object.entries(window.parley.connections())
                    .map(([id, pc]) => [id, pc.connectionState]))"""
    ))


def join_to_first_frame_ms(page: Page, peer_id: str) -> float | None:
    """Milliseconds from the click on "Join" to the first frame of `peer_id`'s video.

    Read from the page's own performance marks (`parley:join`, `parley:first-frame:<id>`).
    """
    value = page.evaluate(
        """(id) => { const j = performance.getEntriesByName("parley:join").at(-1);
                     const f = performance.getEntriesByName(`parley:first-frame:${id}`)[0];
                     return j && f ? f.startTime - j.startTime : null; }""",
        peer_id,
    )
    return None if value is None else float(value)


# Scripts the tests add to a page before it loads (test instruments, not product code).

#: Pretend the machine has no camera: no videoinput device, getUserMedia(video) fails.
NO_CAMERA_SCRIPT: Final[str] = """(() => {
  const md = navigator.mediaDevices;
  const enumerate = md.enumerateDevices.bind(md), gum = md.getUserMedia.bind(md);
  md.enumerateDevices = async () => (await enumerate()).filter((d) => d.kind !== "videoinput");
  md.getUserMedia = async (c) => {
    if (c && c.video) throw new DOMException("Requested device not found", "NotFoundError");
    return gum(c);
  };
})()"""

#: Keep every WebSocket the page opens in `window.__sockets`, so a test can drop one.
TRACK_SOCKETS_SCRIPT: Final[str] = """(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
})()"""

#: Keep every WebSocket in `window.__sockets`; while `window.__blockSockets` is true, new
#: ones go to a dead port (the server stays unreachable for this page: a gap held open);
#: `window.__lastClose` is when one last closed (Date.now()), `window.__socketLog` what
#: each did; while `window.__badResume` is true, a resume presents a wrong key (it fails);
#: while `window.__dropChat` is true, chat frames vanish unsent (a socket as it dies).
BLOCK_SOCKETS_SCRIPT: Final[str] = """(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__blockSockets = false;
  window.__badResume = false;
  window.__dropChat = false;
  window.WebSocket = class extends Native {
    send(data) {
      if (window.__dropChat && typeof data === "string" && data.includes('"chat"')) return;
      if (window.__badResume && typeof data === "string" && data.includes('"resume"')) {
        const msg = JSON.parse(data);
        if (msg.type === "join" && msg.resume) msg.resume.key = "not-the-key";
        data = JSON.stringify(msg);
      }
      return super.send(data);
    }
    constructor(url, ...rest) {
      super(window.__blockSockets ? "ws://127.0.0.1:9/" : url, ...rest);
      window.__sockets.push(this);
      const n = window.__sockets.length;
      window.__socketLog = window.__socketLog || [];
      window.__socketLog.push([Date.now(), n, "new"]);
      this.addEventListener("open", () => window.__socketLog.push([Date.now(), n, "open"]));
      this.addEventListener("close", (e) => {
        window.__lastClose = Date.now();
        window.__socketLog.push([Date.now(), n, `close ${e.code}`]);
      });
    }
  };
})()"""


def use_relay_only(page: Page) -> None:
    """Tick "Always relay" on the pre-join page (this page's calls go through TURN only)."""
    page.get_by_label("Always relay (hides my IP address from others)").check()


def turn_ports(page: Page, peer_id: str) -> set[int]:
    """The TURN ports in the ICE servers the connection to `peer_id` now uses."""
    ports = page.evaluate(
        """(id) => { const pc = window.parley.connections()[id];
                     if (!pc) return [];
                     return pc.getConfiguration().iceServers.flatMap((s) => [].concat(s.urls))
                       .filter((u) => /^turns?:/.test(u))
                       .map((u) => Number(/:(\\d+)(\\?|$)/.exec(u)[1])); }""",
        peer_id,
    )
    return {int(p) for p in ports}


def ice_log(page: Page, peer_id: str) -> list[tuple[float, str]]:
    """The ICE states of the connection to `peer_id`, with their times (unix seconds)."""
    log = page.evaluate("(id) => window.parley.iceLog()[id] || []", peer_id)
    return [(float(t) / 1000, str(state)) for t, state in log]
