"""The call as people expect it (issue 11): what a person sees, at desktop and phone sizes.

Each test groups many checks on one stack and few pages (e2e time is precious). Screenshots
go to the folder the `shots` fixture prints (tests/e2e/shots.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest

pytest.importorskip("playwright", reason="the playwright pip package is not installed")

from playwright.sync_api import Page, expect

from tests.e2e import pages as ui
from tests.e2e.shots import DESKTOP, PHONE, shoot

pytestmark = pytest.mark.e2e

NewPage = Callable[[], Page]
SEEN: Final[int] = 15_000  # ms for what another page sends to show here
ON_STAGE: Final[re.Pattern[str]] = re.compile(r"\bon-stage\b")

#: The camera is blocked in the browser's site settings: getUserMedia(video) is refused.
DENY_CAMERA_SCRIPT: Final[str] = """(() => {
  const md = navigator.mediaDevices, gum = md.getUserMedia.bind(md);
  md.getUserMedia = async (c) => {
    if (c && c.video) throw new DOMException("Permission denied", "NotAllowedError");
    return gum(c);
  };
})()"""


def _page(new_page: NewPage, size: dict[str, int], script: str | None = None) -> Page:
    page = new_page()
    page.set_viewport_size(size)
    if script:
        page.add_init_script(script)
    return page


def _labels_on_one_line(page: Page, selector: str) -> dict[str, bool]:
    """For each visible control's label: whether its text sits on one line, unclipped."""
    return dict(page.evaluate(
        """(sel) => Object.fromEntries([...document.querySelectorAll(sel)]
              .filter((b) => b.offsetParent !== null)
              .map((b) => { const l = b.querySelector(".label");
                            const r = document.createRange(); r.selectNodeContents(l);
                            const tops = [...r.getClientRects()].map((x) => Math.round(x.top));
                            const lines = new Set(tops);
                            const box = b.getBoundingClientRect(), lb = l.getBoundingClientRect();
                            return [l.textContent, lines.size === 1 && lb.left >= box.left - 1
                                    && lb.right <= box.right + 1]; }))""",
        selector,
    ))


def test_ux_leave_error_pages_phone_bar_and_blocked_camera(stack: Any, new_page: NewPage,
                                                           shots: Path) -> None:
    # The owner is on a phone, the other person on a desktop.
    phone = _page(new_page, PHONE)
    desk = _page(new_page, DESKTOP)
    room_url = ui.start_call(phone, stack.url)
    ui.open_room(phone, room_url)
    shoot(phone, "prejoin")
    phone_id = ui.join(phone)
    desk_id = ui.join(desk, room_url)
    ui.wait_for_video_from(phone, desk_id)
    ui.wait_for_video_from(desk, phone_id)

    # Bug 3: at 390 px every label of the owner's bar is on one line, inside its button.
    bar = _labels_on_one_line(phone, ".controls > .ctl")
    assert bar == {"Mute": True, "Camera off": True, "More": True, "Chat": True, "Leave": True}
    shoot(phone, "call-two")
    ui.button(phone, "More").click()
    expect(ui.button(phone, "Lock room")).to_be_visible()
    expect(ui.button(phone, "Copy link")).to_be_visible()
    menu = _labels_on_one_line(phone, ".more-menu .ctl")
    assert menu == {"Share screen": True, "Copy link": True, "Devices": True, "Shortcuts": True,
                    "Lock room": True}
    shoot(phone, "call-more-menu")
    phone.keyboard.press("Escape")
    expect(ui.button(phone, "Lock room")).to_be_hidden()
    # On a desktop the same buttons sit in the bar, with no "More".
    expect(ui.button(desk, "Copy link")).to_be_visible()
    expect(ui.button(desk, "More")).to_be_hidden()
    shoot(desk, "call-two")

    # Bug 1: leaving announces nobody's departure, and says it once.
    ui.button(desk, "Leave").click()
    expect(desk.get_by_role("heading", level=1)).to_have_text("You left the call")
    expect(desk.locator("#ended-message")).to_have_text("Your camera and microphone are off.")
    expect(desk.locator("#toasts")).not_to_contain_text("left")
    expect(phone.locator("#toasts")).to_contain_text(" left.")
    shoot(desk, "ended")

    # Bug 2: a mistyped link is a page that says what happened and offers a way on.
    for page in (desk, phone):
        page.goto(f"{stack.url}/hello%20world!")
        expect(page.get_by_role("heading", level=1)).to_have_text("This room link is not right")
        expect(page.get_by_role("link", name="Open the room “hello-world”")).to_have_attribute(
            "href", "/hello-world")
        expect(page.get_by_role("link", name="Go to the start page")).to_be_visible()
        assert "detail" not in page.content()
        shoot(page, "error-bad-room")
        page.goto(f"{stack.url}/api")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "There is nothing at this address")
        page.goto(f"{stack.url}/{'a' * 70}")
        expect(page.get_by_role("link", name=f"Open the room “{'a' * 64}”")).to_be_visible()
        page.get_by_role("link", name="Go to the start page").click()
        expect(ui.button(page, "Start a call")).to_be_visible()

    # Bug 3: /privacy fits a phone's width, and its tables keep readable columns.
    phone.goto(f"{stack.url}/privacy")
    expect(phone.locator("#fields")).to_be_visible()
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    narrowest = phone.evaluate(
        """() => Math.min(...[...document.querySelectorAll('#fields td')]
                              .map((td) => td.getBoundingClientRect().width))""")
    assert narrowest >= 100
    shoot(phone, "privacy")
    desk.goto(f"{stack.url}/privacy")
    expect(desk.locator("#fields")).to_be_visible()
    shoot(desk, "privacy")

    # Bug 4: on the pre-join screen, "Camera on" with the camera blocked says why.
    for size in (DESKTOP, PHONE):
        blocked = _page(new_page, size, DENY_CAMERA_SCRIPT)
        ui.open_room(blocked, room_url)
        expect(blocked.locator("#device-problems")).to_contain_text("Your camera is blocked.")
        ui.button(blocked, "Camera on").click()
        expect(blocked.locator("#toasts .toast.error")).to_have_text(
            "Your camera is blocked. Allow it in the browser's site settings, then reload.")
        shoot(blocked, "prejoin-camera-blocked")


def _set_name(page: Page, name: str) -> None:
    page.get_by_label("Your name").fill(name)


def test_ux_names_chosen_remembered_unique_and_private(stack: Any, new_page: NewPage,
                                                        shots: Path) -> None:
    ada = _page(new_page, DESKTOP)
    room_url = ui.start_call(ada, stack.url)
    ui.open_room(ada, room_url)
    _set_name(ada, "  Ada \u202eLovelace ")
    ada_id = ui.join(ada)
    expect(ada.locator(".tile.self .name")).to_have_text("Ada Lovelace (you)")

    # The default is a random name, kept across reloads.
    other = _page(new_page, PHONE)
    ui.open_room(other, room_url)
    drawn = other.get_by_label("Your name").input_value()
    assert drawn
    other.reload()
    expect(other.get_by_label("Your name")).to_have_value(drawn)
    other_id = ui.join(other)
    expect(other.locator(ui.tile_of(ada_id) + " .name")).to_have_text("Ada Lovelace", timeout=SEEN)
    expect(ada.locator(ui.tile_of(other_id) + " .name")).to_have_text(drawn, timeout=SEEN)
    # Item 15: each remote video is named after its person.
    expect(other.locator(ui.remote_video(ada_id))).to_have_accessible_name(
        "Ada Lovelace's video", timeout=SEEN)
    expect(ada.locator(ui.remote_video(other_id))).to_have_accessible_name(
        f"{drawn}'s video", timeout=SEEN)

    # Chat shows the current name.
    ada.get_by_role("button", name="Chat").click()
    ada.get_by_label("Message").fill("hello from Ada")
    ada.get_by_label("Message").press("Enter")
    expect(ada.locator(".msg.mine .who")).to_have_text("Ada Lovelace (you)")
    # Item 14: announced while the panel is closed; the unread count is in the button's name.
    expect(other.locator("#chat-announce")).to_have_text(
        "New message from Ada Lovelace: hello from Ada", timeout=SEEN)
    expect(other.locator("#chat-announce")).to_have_attribute("aria-live", "polite")
    other.get_by_role("button", name="Chat, 1 unread").click()
    expect(other.get_by_role("button", name="Chat", exact=True)).to_be_visible()
    expect(other.locator(".msg .who").first).to_have_text("Ada Lovelace", timeout=SEEN)
    shoot(other, "call-chat-names")
    other.get_by_role("button", name="Close chat").click()

    # A second "Ada Lovelace" is numbered, the same way on every page.
    twin = _page(new_page, DESKTOP)
    ui.open_room(twin, room_url)
    _set_name(twin, "Ada Lovelace")
    twin_id = ui.join(twin)
    first, second = sorted([ada_id, twin_id])
    want = {first: "Ada Lovelace", second: "Ada Lovelace (2)"}
    expect(other.locator(ui.tile_of(twin_id) + " .name")).to_have_text(want[twin_id], timeout=SEEN)
    expect(other.locator(ui.tile_of(ada_id) + " .name")).to_have_text(want[ada_id], timeout=SEEN)
    expect(twin.locator(".tile.self .name")).to_have_text(f"{want[twin_id]} (you)", timeout=SEEN)
    expect(ada.locator(ui.tile_of(twin_id) + " .name")).to_have_text(want[twin_id], timeout=SEEN)
    shoot(ada, "call-three-names")

    # Reloading the pre-join page keeps the chosen name.
    ada.reload()
    ui.open_room(ada, room_url)
    expect(ada.get_by_label("Your name")).to_have_value("Ada Lovelace")

    # The name goes to the room's members only: never in a log line or in metrics.
    for service in ("rooms", "signaling-1", "metrics"):
        metrics = ada.request.get(f"{stack.internal_url(service)}/metrics")
        assert metrics.status == 200
        assert "Lovelace" not in metrics.text() and drawn not in metrics.text()
    assert "Lovelace" not in stack.output()
    assert drawn not in stack.output()


def test_ux_alone_lock_for_everyone_and_full_room(stack: Any, new_page: NewPage,
                                                  shots: Path) -> None:
    owner = _page(new_page, PHONE)
    room_url = ui.start_call(owner, stack.url)
    ui.join(owner, room_url)
    room = room_url.rsplit("/", 1)[1]

    # Item 9: alone, the page says so and offers the link, a Copy button, and the capacity.
    waiting = owner.get_by_role("region", name="Waiting for others")
    expect(waiting).to_be_visible()
    expect(waiting).to_contain_text("Up to 6 people can be in this call.")
    expect(owner.get_by_label("Link to this call")).to_have_value(room_url)
    expect(ui.button(owner, "Copy")).to_be_visible()
    shoot(owner, "call-alone")
    member = _page(new_page, DESKTOP)
    ui.join(member, room_url)
    expect(waiting).to_be_hidden()
    expect(member.get_by_role("region", name="Waiting for others")).to_be_hidden()

    # Item 8: an empty password gets the app's own message.
    ui.button(owner, "More").click()
    ui.button(owner, "Lock room").click()
    dialog = owner.get_by_role("dialog", name="Lock this room")
    dialog.get_by_role("button", name="Lock").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "Type a password: people who join from now on will need it.")
    shoot(owner, "lock-dialog-empty")
    dialog.get_by_label("Password").fill("open sesame")
    dialog.get_by_role("button", name="Lock").click()
    # ...everyone sees the lock, in the header and by a toast...
    for page in (owner, member):
        expect(page.locator("#lock-state")).to_have_text("Locked")
        expect(page.locator("#toasts")).to_contain_text("The room is now locked")
    shoot(member, "call-locked")
    assert owner.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    # ...and the owner's button shows the state it is in.
    ui.button(owner, "More").click()
    locked_btn = ui.button(owner, "Locked")
    expect(locked_btn).to_have_attribute("aria-pressed", "true")
    shoot(owner, "call-locked-menu")
    locked_btn.click()
    for page in (owner, member):
        expect(page.locator("#lock-state")).to_be_hidden()
        expect(page.locator("#toasts")).to_contain_text("The room is unlocked")
    ui.button(owner, "More").click()
    expect(ui.button(owner, "Lock room")).to_have_attribute("aria-pressed", "false")
    owner.keyboard.press("Escape")

    # Item 11: a full room says so with its size, and offers a new room.
    for _ in range(4):  # 2 in the call + 4 slots taken through rooms = 6
        r = member.request.post(f"{stack.url}/api/rooms/{room}/join", data={})
        assert r.status == 200
    for size in (PHONE, DESKTOP):
        late = _page(new_page, size)
        ui.open_room(late, room_url)
        ui.click_join(late)
        expect(late.locator("#prejoin-error")).to_have_text(
            "This room is full (6 people). Start a new room, or try again when someone leaves.")
        expect(ui.button(late, "Start a new room")).to_be_visible()
        shoot(late, "prejoin-room-full")
    ui.button(late, "Start a new room").click()
    late.wait_for_url(lambda url: url != room_url and url.startswith(stack.url))
    expect(ui.join_button(late)).to_be_visible()


def test_ux_usage_statistics_wording_is_precise(stack: Any, new_page: NewPage,
                                                shots: Path) -> None:
    for size in (DESKTOP, PHONE):
        page = _page(new_page, size)
        page.goto(f"{stack.url}/")
        expect(page.get_by_role("button", name="Start a call")).to_be_visible()
        assert "no tracking" not in page.locator("body").inner_text().lower()
        foot = page.get_by_role("contentinfo")
        expect(foot).to_contain_text("Anonymous usage statistics: one summary per call, "
                                     "without IP address, room or name.")
        shoot(page, "landing")
        room_url = ui.start_call(page, stack.url)
        ui.open_room(page, room_url)
        box = page.get_by_role("checkbox", name="Send anonymous usage statistics")
        expect(box).to_be_checked()
        expect(box).to_have_accessible_description(
            "One summary per call (how long, how many people, how it connected, in coarse "
            "buckets); never your IP address, the room or your name. You can untick this.")
        expect(page.get_by_role("link", name="What is sent, field by field")).to_have_attribute(
            "href", "/privacy")
        page.goto(f"{stack.url}/")
        page.get_by_role("contentinfo").get_by_role("link", name="Privacy").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Privacy")


#: Test instruments: `window.__blockSockets = true` makes new WebSockets fail (the server is
#: unreachable); `window.__poorLink = true` makes getStats() report a 1.5 s round trip.
OUTAGE_SCRIPT: Final[str] = """(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__blockSockets = false;
  window.WebSocket = class extends Native {
    constructor(url, ...rest) {
      super(window.__blockSockets ? "ws://127.0.0.1:9/" : url, ...rest);
      window.__sockets.push(this);
    }
  };
  const getStats = RTCPeerConnection.prototype.getStats;
  window.__poorLink = false;
  RTCPeerConnection.prototype.getStats = async function (...args) {
    const report = await getStats.apply(this, args);
    if (!window.__poorLink) return report;
    const out = new Map();
    report.forEach((s, id) => out.set(id, s.type === "candidate-pair"
      ? { ...s, currentRoundTripTime: 1.5 } : s));
    return out;
  };
})()"""


def test_ux_connection_state_outage_unsent_chat_and_giving_up(stack: Any, new_page: NewPage,
                                                               shots: Path) -> None:
    a = _page(new_page, PHONE, OUTAGE_SCRIPT)
    a.clock.install()
    b = _page(new_page, DESKTOP)
    room_url = ui.start_call(a, stack.url)
    a_id = ui.join(a, room_url)
    b_id = ui.join(b, room_url)
    ui.wait_for_video_from(a, b_id)
    ui.wait_for_video_from(b, a_id)

    # A poor connection says so on the tile.
    a.evaluate("() => { window.__poorLink = true; }")
    status = a.locator(ui.tile_of(b_id) + " .tile-status")
    expect(status).to_have_text("Poor connection")
    shoot(a, "call-poor-connection")
    a.evaluate("() => { window.__poorLink = false; }")
    expect(status).not_to_have_text("Poor connection")

    # Signalling unreachable: the banner says so plainly; chat typed meanwhile is "not sent".
    a.evaluate("() => { window.__blockSockets = true; window.__sockets.at(-1).close(); }")
    banner = a.get_by_role("status").filter(has_text="server")
    expect(banner).to_have_text("The server cannot be reached. Trying to reconnect…")
    ui.button(a, "Chat").click()
    a.get_by_label("Message").fill("are you there?")
    a.get_by_label("Message").press("Enter")
    mine = a.locator(".msg.mine").last
    expect(mine).to_contain_text("not sent")
    shoot(a, "call-server-unreachable")
    # ...and delivered once the server is back.
    a.evaluate("() => { window.__blockSockets = false; }")
    expect(mine).not_to_contain_text("not sent", timeout=ui.JOIN_TIMEOUT_MS)
    expect(banner).to_be_hidden()
    expect(b.locator(".msg .text")).to_have_text(["are you there?"])
    assert a.evaluate("() => window.parley.peerId()") == a_id

    # Minutes of failure: the page says the call could not be restored and offers to rejoin.
    a.evaluate("() => { window.__blockSockets = true; window.__sockets.at(-1).close(); }")
    expect(banner).to_be_visible()
    a.clock.fast_forward("03:05")
    expect(a.get_by_role("heading", level=1)).to_have_text("The call could not be restored")
    expect(a.get_by_role("link", name="Rejoin")).to_have_attribute(
        "href", "/" + room_url.rsplit("/", 1)[1])
    shoot(a, "ended-not-restored")


def test_ux_active_speaker_ring_and_muted_speech(stack: Any, new_page: NewPage,
                                                 shots: Path) -> None:
    # Chromium's fake microphone beeps: a steady "speaker" on every page.
    a = _page(new_page, DESKTOP)
    b = _page(new_page, PHONE)
    room_url = ui.start_call(a, stack.url)
    a_id = ui.join(a, room_url)
    b_id = ui.join(b, room_url)
    ui.wait_for_video_from(a, b_id)
    ui.wait_for_video_from(b, a_id)

    a.wait_for_function("(sel) => document.querySelector(sel).classList.contains('speaking')",
                        arg=ui.tile_of(b_id), timeout=ui.MEDIA_TIMEOUT_MS)
    shoot(a, "call-speaking")
    b.wait_for_function("(sel) => document.querySelector(sel).classList.contains('speaking')",
                        arg=ui.tile_of(a_id), timeout=ui.MEDIA_TIMEOUT_MS)

    # Muted and speaking: told so, and no ring on my own tile.
    ui.button(b, "Mute").click()
    expect(ui.button(b, "Unmute")).to_be_visible()
    expect(b.locator("#toasts")).to_contain_text(
        "You are muted. Unmute (or press m) to be heard.", timeout=ui.MEDIA_TIMEOUT_MS)
    expect(b.locator(".tile.self")).not_to_have_class(re.compile(r"\bspeaking\b"))
    shoot(b, "call-muted-speaking")


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None
    return box


def test_ux_screen_share_takes_the_stage_pin_and_full_screen(stack: Any, new_page: NewPage,
                                                            shots: Path) -> None:
    a = _page(new_page, DESKTOP)
    b = _page(new_page, PHONE)
    c = _page(new_page, DESKTOP)
    room_url = ui.start_call(a, stack.url)
    a_id = ui.join(a, room_url)
    b_id = ui.join(b, room_url)
    c_id = ui.join(c, room_url)
    ui.wait_for_video_from(a, c_id)
    for page, other in ((a, b_id), (b, a_id), (c, a_id)):
        ui.wait_for_video_from(page, other)
    if not a.evaluate("() => Boolean(navigator.mediaDevices.getDisplayMedia)"):
        pytest.skip("this browser cannot capture a screen")

    ui.button(a, "Share screen").click()
    expect(ui.button(a, "Stop sharing")).to_be_visible(timeout=10_000)
    for page in (b, c):
        stage = page.locator(ui.tile_of(a_id))
        expect(stage).to_have_class(ON_STAGE)
        # The screen is the large tile; the cameras are a strip under it.
        big = _box(page, ui.tile_of(a_id))
        for small in page.locator(".tile:not(.on-stage)").all():
            box = small.bounding_box()
            assert box is not None
            assert box["width"] * 2 < big["width"]
            assert box["y"] >= big["y"] + big["height"]
        shoot(page, "call-screen-stage")

    # Any tile can be pinned: it takes the stage, and the pin shows it.
    pin = c.get_by_role("button", name="Pin yourself")
    pin.click()
    expect(pin).to_have_attribute("aria-pressed", "true")
    expect(c.locator(".tile.self")).to_have_class(ON_STAGE)
    expect(c.locator(ui.tile_of(a_id))).not_to_have_class(ON_STAGE)
    pin.click()
    expect(c.locator(ui.tile_of(a_id))).to_have_class(ON_STAGE)
    c.get_by_role("button", name="Pin " + c.locator(ui.tile_of(b_id) + " .name").inner_text(),
                  exact=True).click()
    expect(c.locator(ui.tile_of(b_id))).to_have_class(ON_STAGE)
    shoot(c, "call-pinned")

    # ...or shown full screen.
    name_a = c.locator(ui.tile_of(a_id) + " .name").inner_text()
    c.get_by_role("button", name=f"Show {name_a} full screen").click()
    c.wait_for_function("(sel) => document.fullscreenElement === document.querySelector(sel)",
                        arg=ui.tile_of(a_id))
    c.keyboard.press("Escape")

    ui.button(a, "Stop sharing").click()
    expect(b.locator(".tile.on-stage")).to_have_count(0)


def _level_seen(page: Page, selector: str) -> None:
    """Wait until the level meter at `selector` has moved (the fake microphone beeps)."""
    page.wait_for_function("(sel) => document.querySelector(sel).value > 0.01", arg=selector,
                           timeout=ui.MEDIA_TIMEOUT_MS)


def test_ux_device_pickers_level_meter_and_switch_without_renegotiation(
        stack: Any, new_page: NewPage, shots: Path) -> None:
    a = _page(new_page, PHONE)
    b = _page(new_page, DESKTOP)
    room_url = ui.start_call(a, stack.url)
    ui.open_room(a, room_url)
    mics = a.get_by_role("combobox", name="Microphone")
    cams = a.get_by_role("combobox", name="Camera")
    expect(mics.locator("option").first).to_be_attached()
    expect(cams.locator("option").first).to_be_attached()
    expect(a.get_by_role("meter", name="Microphone level")).to_be_visible()
    _level_seen(a, "#pre-mic-level")
    shoot(a, "prejoin-devices")
    a_id = ui.join(a)
    b_id = ui.join(b, room_url)
    ui.wait_for_video_from(a, b_id)
    ui.wait_for_video_from(b, a_id)

    # In the call: the same pickers in "Devices" (under "More" on a phone).
    ui.button(a, "More").click()
    ui.button(a, "Devices").click()
    dialog = a.get_by_role("dialog", name="Devices")
    _level_seen(a, "#call-mic-level")
    shoot(a, "call-devices")
    options = dialog.get_by_role("combobox", name="Microphone").locator("option")
    values = [o.get_attribute("value") for o in options.all()]
    if len(values) < 2:
        pytest.skip("only one microphone: nothing to switch to")
    sdp_before = a.evaluate(
        "(id) => window.parley.connections()[id].currentLocalDescription.sdp", b_id)
    current = dialog.get_by_role("combobox", name="Microphone").input_value()
    other = next(v for v in values if v != current)
    dialog.get_by_role("combobox", name="Microphone").select_option(other)
    a.wait_for_function(
        """([id, dev]) => { const s = window.parley.connections()[id].getSenders()
                               .find((x) => x.track && x.track.kind === "audio");
                           return Boolean(s && s.track.getSettings().deviceId === dev); }""",
        arg=[b_id, other])
    # replaceTrack: the same session description, no new offer.
    assert a.evaluate(
        "(id) => window.parley.connections()[id].currentLocalDescription.sdp", b_id) == sdp_before
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    # Remembered for next time.
    assert a.evaluate("() => JSON.parse(localStorage.getItem('parley.micId'))") == other


def test_ux_keyboard_shortcuts_and_their_help(stack: Any, new_page: NewPage,
                                              shots: Path) -> None:
    a = _page(new_page, DESKTOP)
    room_url = ui.start_call(a, stack.url)
    ui.join(a, room_url)
    expect(ui.button(a, "Mute")).to_have_attribute("aria-keyshortcuts", "m")
    a.keyboard.press("m")
    expect(ui.button(a, "Unmute")).to_be_visible()
    a.keyboard.press("m")
    expect(ui.button(a, "Mute")).to_be_visible()
    a.keyboard.press("v")
    expect(ui.button(a, "Camera on")).to_be_visible()
    a.keyboard.press("v")
    expect(ui.button(a, "Camera off")).to_be_visible()
    a.keyboard.press("c")
    expect(a.get_by_label("Message")).to_be_focused()
    a.keyboard.type("mvc")  # typing in a field is typing, not shortcuts
    expect(a.get_by_label("Message")).to_have_value("mvc")
    expect(ui.button(a, "Mute")).to_be_visible()
    a.keyboard.press("Escape")
    expect(a.get_by_role("complementary", name="Chat")).to_be_hidden()
    a.keyboard.press("?")
    dialog = a.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog.locator("dt")).to_have_text(["m", "v", "c", "?"])
    expect(dialog.locator("dd")).to_have_text([
        "Mute or unmute the microphone", "Turn the camera off or on", "Open or close the chat",
        "Show these shortcuts"])
    shoot(a, "call-shortcuts")
    a.keyboard.press("m")  # not while a dialog is open
    expect(ui.button(a, "Mute")).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()


def test_ux_names_module_cleans_and_numbers_like_signalling(stack: Any,
                                                            new_page: NewPage) -> None:
    page = _page(new_page, DESKTOP)
    page.goto(f"{stack.url}/")
    got = page.evaluate("""async () => {
        const n = await import("/static/names.js");
        const labels = n.uniqueLabels(new Map([["self", "Ada"], ["b", "ada "], ["c", ""],
                                               ["a", "Ada"]]), "m");
        return { clean: n.cleanName("  Ada\\u202e\\u0000  Lovelace " + "x".repeat(60)),
                 labels: Object.fromEntries(labels), initials: n.initialsOf("ada lovelace (2)"),
                 fallback: n.peerLabel("c") };
    }""")
    assert got["clean"] == ("Ada Lovelace " + "x" * 60)[:40]
    # Numbered in peer-id order ("a" < "b" < "m", my id), case-insensitively.
    assert got["labels"] == {"a": "Ada", "b": "ada (2)", "self": "Ada (3)",
                             "c": got["fallback"]}
    assert got["initials"] == "AL"
