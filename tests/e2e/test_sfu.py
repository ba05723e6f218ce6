"""Calls through Parley's SFU in headless Chromium (fake camera and microphone, 320x240).

One `parley dev` with two SFUs and `PARLEY_MESH_MAX=2` serves the whole module (six pages
are heavy on two cores): six pages in one room (mesh, then switched to the SFU without a
reload), a late joiner's first frame, mute/camera state and leave, a relay-forced page,
and the room's SFU SIGKILLed mid-call (media resumes on every page through the other).
"""

from __future__ import annotations

import os
import re
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright", reason="the playwright pip package is not installed")

from playwright.sync_api import Page, expect

from services.metrics.schema import Beacon
from tests.e2e import pages as ui
from tests.stack import Stack, start_stack

NewPage = Callable[[], Page]
MEDIA_MS = 45_000
#: A test instrument: the fake camera at 320x240, 15 fps (six pages on two cores).
SMALL_CAMERA = """(() => {
  const md = navigator.mediaDevices, gum = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => {
    if (c && c.video) {
      const v = typeof c.video === "object" ? c.video : {};
      c = { ...c, video: { ...v, width: 320, height: 240, frameRate: 15 } };
    }
    return gum(c);
  };
})();"""


@pytest.fixture(scope="module")
def sfu_stack() -> Iterator[Stack]:
    s = start_stack(sfus=2, env={
        "PARLEY_MESH_MAX": "2", "PARLEY_SFU_ROOM_CAPACITY": "8", "PARLEY_SFU_TTL": "3"})
    yield s
    s.stop()


@pytest.fixture
def small_page(new_page: NewPage) -> NewPage:
    def make() -> Page:
        page = new_page()
        page.add_init_script(SMALL_CAMERA)
        return page
    return make


def _sfu_peers(stack: Stack) -> dict[str, int]:
    """PeerConnections per SFU child (`sfu-1`, `sfu-2`), from their /metrics."""
    out = {}
    for name in ("sfu-1", "sfu-2"):
        try:
            with urllib.request.urlopen(f"{stack.internal_url(name)}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            out[name] = -1
            continue
        found = re.search(r"^parley_sfu_peers (\S+)$", text, re.M)
        out[name] = int(float(found.group(1))) if found else 0
    return out


def _pid_of(stack: Stack, name: str) -> int:
    """The pid of a `parley dev` child, by the health port in its command line."""
    port = stack.internal_url(name).rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"sfu" in args and b"--http-port" in args and \
                args[args.index(b"--http-port") + 1] == port.encode():
            return int(proc.name)
    raise AssertionError(f"no process for {name}")


def _wait_all_video(pages: list[tuple[Page, str]], timeout: int = MEDIA_MS) -> None:
    for page, me in pages:
        for _, other in pages:
            if other != me:
                ui.wait_for_video_from(page, other, timeout=timeout)


def _frames_advance(page: Page, peer_id: str) -> bool:
    return ui.video_frame_callback_fires(page, peer_id, timeout_ms=15_000)


def test_sfu_six_pages_late_joiner_state_leave_and_failover(
        sfu_stack: Stack, small_page: NewPage, capsys: Any) -> None:
    first = small_page()
    room_url = ui.start_call(first, sfu_stack.url)
    pages = [(first, ui.join(first))]
    for _ in range(4):
        page = small_page()
        pages.append((page, ui.join(page, room_url)))
    _wait_all_video(pages)
    for page, _ in pages:  # one connection each, to the server, whoever joined as mesh
        page.wait_for_function(
            "() => Object.keys(window.parley.connections()).join() === 'sfu'",
            timeout=MEDIA_MS)

    # a late joiner: straight onto the SFU, first frame of each other person
    late = small_page()
    late_id = ui.join(late, room_url)
    pages.append((late, late_id))
    for _, other in pages[:-1]:
        ui.wait_for_video_from(late, other, timeout=MEDIA_MS)
    firsts = [ui.join_to_first_frame_ms(late, other) for _, other in pages[:-1]]
    known = [ms for ms in firsts if ms is not None]
    with capsys.disabled():
        print(f"\n[sfu] late joiner, join to first frame: "
              f"{', '.join(f'{ms:.0f}' for ms in known)} ms (6 pages, 320x240)")
    _wait_all_video(pages)
    assert sum(n for n in _sfu_peers(sfu_stack).values() if n > 0) == 6

    # mute and camera state reach the others' tiles
    a, a_id = pages[0]
    b, _ = pages[1]
    muted = b.locator(f"{ui.tile_of(a_id)} .pill.muted")
    avatar = b.locator(f"{ui.tile_of(a_id)} .avatar")
    ui.button(a, "Mute").click()
    expect(muted).to_be_visible()
    ui.button(a, "Camera off").click()
    expect(avatar).to_be_visible()
    ui.button(a, "Camera on").click()
    ui.button(a, "Unmute").click()
    expect(avatar).to_be_hidden()
    expect(muted).to_be_hidden()
    assert _frames_advance(b, a_id)

    # leave: the late joiner's tile goes from every page
    ui.button(late, "Leave").click()
    expect(late.get_by_role("heading", name="You left the call")).to_be_visible()
    pages.pop()
    for page, _ in pages:
        expect(page.locator(ui.remote_video(late_id))).to_have_count(0, timeout=15_000)

    # the room's SFU dies: every page moves to the other one by itself
    counts = _sfu_peers(sfu_stack)
    victim = max(counts, key=lambda k: counts[k])
    assert counts[victim] == 5, counts
    os.kill(_pid_of(sfu_stack, victim), signal.SIGKILL)
    killed = time.monotonic()
    for page, me in pages:
        for _, other in pages:
            if other != me:
                page.wait_for_function(
                    """(id) => { const pc = window.parley.connections().sfu;
                                 return Boolean(pc && pc.connectionState === "connected"); }""",
                    arg=other, timeout=60_000)
    for page, me in pages:
        for _, other in pages:
            if other != me:
                assert _frames_advance(page, other), f"{me} sees no new frames from {other}"
    seconds = time.monotonic() - killed
    with capsys.disabled():
        print(f"[sfu] failover: media on all 5 pages again {seconds:.1f} s after SIGKILL")
    alive = _sfu_peers(sfu_stack)
    assert any(n == 5 for name, n in alive.items() if name != victim) or alive[victim] == 5


def test_sfu_relay_forced_participant(sfu_stack: Stack, small_page: NewPage) -> None:
    a = small_page()
    room_url = ui.start_call(a, sfu_stack.url)
    relay = a.get_by_label("Always relay (hides my IP address from others)")
    relay.check()
    a_id = ui.join(a)
    others = []
    for _ in range(2):  # three people: past the mesh limit of 2
        page = small_page()
        others.append((page, ui.join(page, room_url)))
    for page, _ in others:
        ui.wait_for_video_from(page, a_id, timeout=MEDIA_MS)
    for _, other in others:
        ui.wait_for_video_from(a, other, timeout=MEDIA_MS)
    a.wait_for_function("() => Boolean(window.parley.connections().sfu)")
    assert a.evaluate(
        "() => window.parley.connections().sfu.getConfiguration().iceTransportPolicy"
    ) == "relay"
    pair = ui.selected_pair(a, "sfu")
    assert pair is not None and pair.local_type == "relay", pair
    # the speaking ring works per person on the one connection (the fake mic beeps)
    a.wait_for_function("(sel) => document.querySelector(sel).classList.contains('speaking')",
                        arg=ui.tile_of(others[0][1]), timeout=MEDIA_MS)
    # the usage beacon says the session went through the server (and the relay)
    with a.expect_request(lambda r: r.url.endswith("/beacon") and r.method == "POST") as sent:
        ui.button(a, "Leave").click()
    beacon = Beacon.model_validate_json(sent.value.post_data or "")
    assert beacon.event == "session-end" and beacon.via_server and beacon.always_relay
    assert beacon.local_candidate == "relay"


def test_sfu_screen_share_replaces_the_camera_and_comes_back(
        sfu_stack: Stack, small_page: NewPage) -> None:
    """Screen share on the SFU path: the one video sender swaps to the screen (no
    renegotiation), the others see the screen pill and frames keep coming, and stopping
    brings the camera back."""
    a = small_page()
    room_url = ui.start_call(a, sfu_stack.url)
    a_id = ui.join(a)
    b, c = small_page(), small_page()
    b_id = ui.join(b, room_url)
    c_id = ui.join(c, room_url)  # three people: past the mesh limit of 2
    for page, me in ((a, a_id), (b, b_id), (c, c_id)):
        for other in {a_id, b_id, c_id} - {me}:
            ui.wait_for_video_from(page, other, timeout=MEDIA_MS)
    b.wait_for_function("() => Boolean(window.parley.connections().sfu)")
    if not b.evaluate("() => Boolean(navigator.mediaDevices.getDisplayMedia)"):
        pytest.skip("this browser cannot capture a screen")

    ui.button(b, "Share screen").click()
    expect(ui.button(b, "Stop sharing")).to_be_visible(timeout=10_000)
    for viewer in (a, c):
        expect(viewer.locator(f"{ui.tile_of(b_id)} .pill.screen")).to_be_visible(
            timeout=MEDIA_MS)
        assert _frames_advance(viewer, b_id), "no frames of the shared screen"
    assert set(b.evaluate("() => Object.keys(window.parley.connections())")) == {"sfu"}

    ui.button(b, "Stop sharing").click()
    for viewer in (a, c):
        expect(viewer.locator(f"{ui.tile_of(b_id)} .pill.screen")).to_be_hidden(
            timeout=MEDIA_MS)
        assert _frames_advance(viewer, b_id), "no camera frames after the share ended"
    expect(ui.button(b, "Share screen")).to_be_visible()
