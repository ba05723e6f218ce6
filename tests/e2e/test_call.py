"""End to end: real Chromium pages (fake camera and microphone) in calls on the local stack.

Fixtures (`stack`, `stack_two_replicas`, `stack_relay_forced`, `new_page`) come from
conftest.py. No timing is asserted; Join→first-frame times are only printed.
"""

from __future__ import annotations

import re

import statistics
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("playwright", reason="the playwright pip package is not installed")

from playwright.sync_api import Page, expect

from tests.e2e import pages as ui

pytestmark = pytest.mark.e2e

NewPage = Callable[[], Page]


def _call_of_two(new_page: NewPage, base_url: str) -> tuple[Page, str, Page, str]:
    """A starts a call and joins, B opens the link and joins: (a, a_id, b, b_id)."""
    a, b = new_page(), new_page()
    room_url = ui.start_call(a, base_url)
    a_id = ui.join(a)
    b_id = ui.join(b, room_url)
    return a, a_id, b, b_id


def _report(capsys: Any, label: str, samples: list[float]) -> None:
    with capsys.disabled():
        shown = ", ".join(f"{s:.0f}" for s in samples)
        print(f"\n[parley e2e] Join→first remote frame, {label}: median "
              f"{statistics.median(samples):.0f} ms over {len(samples)} run(s) [{shown}]")


def _measure_join_to_first_frame(new_page: NewPage, base_url: str, runs: int) -> list[float]:
    """Join the second page `runs` times (a fresh room each) and read its Join→frame time."""
    samples = []
    for _ in range(runs):
        a, a_id, b, _ = _call_of_two(new_page, base_url)
        ui.wait_for_video_from(b, a_id)
        b.wait_for_function(
            "(id) => performance.getEntriesByName(`parley:first-frame:${id}`).length > 0",
            arg=a_id, timeout=ui.MEDIA_TIMEOUT_MS)
        ms = ui.join_to_first_frame_ms(b, a_id)
        assert ms is not None
        samples.append(ms)
        for page in (a, b):
            ui.button(page, "Leave").click()
            page.context.close()
    return samples


def test_call_two_pages_decode_each_others_video(stack: Any, new_page: NewPage,
                                                 capsys: Any) -> None:
    a, a_id, b, b_id = _call_of_two(new_page, stack.url)

    for page, other in ((a, b_id), (b, a_id)):
        ui.wait_for_video_from(page, other)
        assert ui.video_frame_callback_fires(page, other), "no video frame callback"
        first = ui.frames_decoded(page, other)
        page.wait_for_timeout(1000)
        assert ui.frames_decoded(page, other) > first > 0
        assert ui.connection_states(page) == {other: "connected"}
        expect(page.locator(ui.tile_of(other))).to_have_attribute("data-state", "connected")

    ms = ui.join_to_first_frame_ms(b, a_id)
    if ms is not None:
        _report(capsys, "direct, single run", [ms])


def test_call_mute_and_camera_state_reach_the_other_tile(stack: Any, new_page: NewPage) -> None:
    a, a_id, b, _ = _call_of_two(new_page, stack.url)
    muted_badge = b.locator(f"{ui.tile_of(a_id)} .pill.muted")
    avatar = b.locator(f"{ui.tile_of(a_id)} .avatar")
    expect(muted_badge).to_be_hidden()

    ui.button(a, "Mute").click()
    expect(ui.button(a, "Unmute")).to_be_visible()
    expect(muted_badge).to_be_visible()

    ui.button(a, "Unmute").click()
    expect(ui.button(a, "Mute")).to_be_visible()
    expect(muted_badge).to_be_hidden()

    ui.button(a, "Camera off").click()
    expect(ui.button(a, "Camera on")).to_be_visible()
    expect(avatar).to_be_visible()
    ui.button(a, "Camera on").click()
    expect(avatar).to_be_hidden()
    ui.wait_for_video_from(b, a_id)


def test_call_chat_reaches_the_other_page(stack: Any, new_page: NewPage) -> None:
    a, _, b, _ = _call_of_two(new_page, stack.url)
    ui.button(a, "Chat").click()
    a.get_by_label("Message").fill("hello from a")
    a.get_by_label("Message").press("Enter")
    ui.button(b, "Chat, 1 unread").click()  # the unread count is in its name (issue 11)
    expect(b.locator("#chat-log")).to_contain_text("hello from a")
    expect(a.locator("#chat-log .msg")).to_have_count(1)  # my own line, shown once


def test_call_leave_gives_peer_left_and_removes_the_tile(stack: Any, new_page: NewPage) -> None:
    a, _, b, b_id = _call_of_two(new_page, stack.url)
    ui.wait_for_video_from(a, b_id)

    ui.button(b, "Leave").click()

    expect(b.get_by_role("heading", name="You left the call")).to_be_visible()
    assert ui.connection_states(b) == {}
    expect(a.locator(ui.remote_video(b_id))).to_have_count(0, timeout=15_000)
    assert ui.connection_states(a) == {}


def test_call_leaving_through_rooms_elsewhere_ends_the_call(stack: Any,
                                                           new_page: NewPage) -> None:
    a, b = new_page(), new_page()
    room_url = ui.start_call(a, stack.url)
    ui.join(a)
    ui.open_room(b, room_url)
    with b.expect_response(lambda r: r.url.endswith("/join")) as answer:
        b_id = ui.join(b)
    token = answer.value.json()["token"]
    room = room_url.rstrip("/").rsplit("/", 1)[1]

    # the same ticket used elsewhere (another tab, a script) to leave: the call must end
    left = b.request.post(f"{stack.url}/api/rooms/{room}/leave", data={"token": token})
    assert left.status == 204

    expect(b.get_by_role("heading", name="The call ended")).to_be_visible(timeout=15_000)
    expect(b.locator("#ended-message")).to_have_text(
        "You are no longer in this room: you left it from elsewhere, or your place lapsed.")
    expect(a.locator(ui.remote_video(b_id))).to_have_count(0, timeout=15_000)


def test_call_three_pages_form_a_full_mesh(stack: Any, new_page: NewPage) -> None:
    a, b, c = new_page(), new_page(), new_page()
    room_url = ui.start_call(a, stack.url)
    ids = {a: ui.join(a)}
    ids[b] = ui.join(b, room_url)
    ids[c] = ui.join(c, room_url)

    for page in (a, b, c):
        others = {ids[p] for p in (a, b, c) if p is not page}
        for other in others:
            ui.wait_for_video_from(page, other)
        page.wait_for_function(
            """(n) => { const pcs = Object.values(window.parley.connections());
                        return pcs.length === n &&
                               pcs.every((pc) => pc.connectionState === "connected"); }""",
            arg=len(others), timeout=ui.MEDIA_TIMEOUT_MS)
        assert set(ui.connection_states(page)) == others
        expect(page.locator("video[data-peer-id]")).to_have_count(2)


def test_call_locked_room_refuses_a_wrong_password(stack: Any, new_page: NewPage) -> None:
    owner, guest = new_page(), new_page()
    room_url = ui.start_call(owner, stack.url)
    owner_id = ui.join(owner)

    ui.button(owner, "Lock room").click()
    owner.get_by_label("Password", exact=True).fill("s3cret words")
    owner.get_by_role("button", name="Lock", exact=True).click()
    # The owner's button shows the state it is in (issue 11): pressed, "Locked".
    expect(ui.button(owner, "Locked")).to_have_attribute("aria-pressed", "true")

    ui.open_room(guest, room_url)
    ui.click_join(guest)
    error = guest.locator("#prejoin-error")
    expect(error).to_contain_text("locked")
    ui.click_join(guest, "wrong")
    expect(error).to_contain_text("password is not right")
    expect(ui.button(guest, "Leave")).to_be_hidden()

    ui.join(guest, password="s3cret words")
    ui.wait_for_video_from(guest, owner_id)
    expect(ui.button(guest, "Lock room")).to_be_hidden()  # only the owner may lock


def test_call_always_relay_setting_is_remembered_and_applied(stack: Any, new_page: NewPage) -> None:
    page = new_page()
    room_url = ui.start_call(page, stack.url)
    relay = page.get_by_label("Always relay (hides my IP address from others)")
    expect(relay).not_to_be_checked()
    relay.check()
    page.reload()
    expect(relay).to_be_checked()
    ui.join(page)
    assert page.evaluate("() => window.parley.info().iceTransportPolicy") == "relay"
    other = new_page()
    other_id = ui.join(other, room_url)
    page.wait_for_function("(id) => Boolean(window.parley.connections()[id])", arg=other_id)
    assert page.evaluate(
        "(id) => window.parley.connections()[id].getConfiguration().iceTransportPolicy", other_id
    ) == "relay"


def test_call_without_camera_joins_receive_only_then_shares_screen(stack: Any,
                                                                    new_page: NewPage) -> None:
    a, b = new_page(), new_page()
    b.context.add_init_script(ui.NO_CAMERA_SCRIPT)
    room_url = ui.start_call(a, stack.url)
    a_id = ui.join(a)
    ui.open_room(b, room_url)
    expect(b.locator("#device-problems")).to_contain_text("No camera was found.")
    b_id = ui.join(b)

    ui.wait_for_video_from(b, a_id)  # receive-only still receives
    expect(a.locator(f"{ui.tile_of(b_id)} .avatar")).to_be_visible()  # and shows no camera
    if not b.evaluate("() => Boolean(navigator.mediaDevices.getDisplayMedia)"):
        pytest.skip("this browser cannot capture a screen")

    # B had no video to send: sharing adds a track, which renegotiates.
    ui.button(b, "Share screen").click()
    expect(ui.button(b, "Stop sharing")).to_be_visible(timeout=10_000)
    ui.wait_for_video_from(a, b_id)
    expect(a.locator(f"{ui.tile_of(b_id)} .pill.screen")).to_be_visible()
    first = ui.frames_decoded(a, b_id)
    a.wait_for_timeout(1000)
    assert ui.frames_decoded(a, b_id) > first

    ui.button(b, "Stop sharing").click()
    expect(a.locator(f"{ui.tile_of(b_id)} .pill.screen")).to_be_hidden()
    expect(ui.button(b, "Share screen")).to_be_visible()


def test_call_dropped_signaling_socket_resumes_the_same_peer(stack: Any, new_page: NewPage) -> None:
    a, b = new_page(), new_page()
    b.context.add_init_script(ui.TRACK_SOCKETS_SCRIPT)
    room_url = ui.start_call(a, stack.url)
    a_id = ui.join(a)
    b_id = ui.join(b, room_url)
    ui.wait_for_video_from(a, b_id)
    a.evaluate("(sel) => { document.querySelector(sel).__before = true; }", ui.remote_video(b_id))

    b.evaluate("() => window.__sockets.at(-1).close()")  # the network drops, as far as B knows

    b.wait_for_function(
        "() => window.__sockets.length === 2 && window.parley.info().signalingState === 'open'",
        timeout=15_000)
    assert b.evaluate("() => window.parley.peerId()") == b_id
    # A never saw B leave: same tile, same connection, media still flowing.
    same_tile = "(sel) => document.querySelector(sel).__before === true"
    assert a.evaluate(same_tile, ui.remote_video(b_id))
    first = ui.frames_decoded(a, b_id)
    a.wait_for_timeout(1000)
    assert ui.frames_decoded(a, b_id) > first
    # The resumed socket carries messages again.
    ui.button(b, "Chat").click()
    b.get_by_label("Message").fill("back again")
    b.get_by_label("Message").press("Enter")
    ui.button(a, "Chat, 1 unread").click()
    expect(a.locator("#chat-log")).to_contain_text("back again")
    assert ui.connection_states(a) == {b_id: "connected"}
    assert a_id in ui.connection_states(b)


def _peers_on(replica_url: str) -> int:
    """`parley_signaling_peers` of one signalling replica."""
    import urllib.request

    with urllib.request.urlopen(f"{replica_url}/metrics", timeout=10) as r:
        text = r.read().decode()
    found = re.search(r"^parley_signaling_peers (\S+)$", text, re.M)
    return int(float(found.group(1))) if found else 0


def test_call_two_signaling_replicas_connect(stack_two_replicas: Any, new_page: NewPage) -> None:
    a, a_id, b, b_id = _call_of_two(new_page, stack_two_replicas.url)
    # One origin: the gateway deals /ws connections to the replicas round-robin. Each
    # replica's own /metrics (its loopback address, from the stack's run.env) says it holds
    # exactly one of the two peers.
    held = [_peers_on(stack_two_replicas.internal_url(f"signaling-{i}")) for i in (1, 2)]
    assert held == [1, 1], f"peers per replica: {held} (expected one replica each)"

    ui.wait_for_video_from(a, b_id)
    ui.wait_for_video_from(b, a_id)
    assert ui.connection_states(a) == {b_id: "connected"}
    assert ui.connection_states(b) == {a_id: "connected"}


def test_call_relay_forced_connects_through_turn(stack_relay_forced: Any, new_page: NewPage,
                                                 capsys: Any) -> None:
    a, b = new_page(), new_page()
    room_url = ui.start_call(a, stack_relay_forced.url)
    with a.expect_response(lambda r: r.url.endswith("/join")) as answer:
        a_id = ui.join(a)
    ice_urls = [u for s in answer.value.json()["ice_servers"] for u in
                ([s["urls"]] if isinstance(s["urls"], str) else s["urls"])]
    assert any(u.startswith(("turn:", "turns:")) for u in ice_urls), (
        f"rooms handed out no TURN server (is the relay registered yet?): {ice_urls}")
    b_id = ui.join(b, room_url)
    for page, other in ((a, b_id), (b, a_id)):
        ui.wait_for_video_from(page, other)
        assert page.evaluate("() => window.parley.info().iceTransportPolicy") == "relay"
        assert ui.connection_states(page) == {other: "connected"}
        pair = ui.selected_pair(page, other)
        assert pair is not None, "no selected candidate pair"
        assert "relay" in (pair.local_type, pair.remote_type), pair
    samples = _measure_join_to_first_frame(new_page, stack_relay_forced.url, runs=4)
    _report(capsys, "relay forced", samples)


def test_call_join_to_first_frame_direct(stack: Any, new_page: NewPage, capsys: Any) -> None:
    samples = _measure_join_to_first_frame(new_page, stack.url, runs=5)
    _report(capsys, "direct", samples)
