"""End to end: a real call's usage beacons reach the stack's metrics service.

The beacon a page sends is read back as the browser sent it (and validated with the
server's own pydantic model), and the metrics service's counters show it accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("playwright", reason="the playwright pip package is not installed")

from playwright.sync_api import Page

from services.metrics.schema import Beacon
from tests.e2e import beacons
from tests.e2e import pages as ui

pytestmark = pytest.mark.e2e


def _leave_and_read_beacon(page: Page) -> Beacon:
    """Press "Leave" and return the beacon the page sent, as the server would parse it."""
    with page.expect_request(lambda r: r.url.endswith("/beacon") and r.method == "POST") as sent:
        ui.button(page, "Leave").click()
    assert sent.value.headers.get("content-type", "").startswith("text/plain")
    return Beacon.model_validate_json(sent.value.post_data or "")


def test_beacon_session_end_accepted_after_a_call(stack: Any,
                                                 new_page: Callable[[], Page]) -> None:
    url = beacons.metrics_url(stack)
    before = beacons.counter(url, beacons.ACCEPTED)
    a, b = new_page(), new_page()
    room_url = ui.start_call(a, stack.url)
    a_id = ui.join(a)
    b_id = ui.join(b, room_url)
    ui.wait_for_video_from(a, b_id)
    ui.wait_for_video_from(b, a_id)
    for label in ("Mute", "Unmute"):
        ui.button(a, label).click()
    # The selected pair is sampled when the connection comes up; give getStats its turn.
    a.wait_for_timeout(500)

    first = _leave_and_read_beacon(a)
    assert first.event == "session-end" and first.failure_stage is None
    assert first.local_candidate is not None and first.remote_candidate is not None
    assert first.protocol == "udp"
    assert (first.mute_toggles, first.peers, first.duration) == ("1-2", "1", "<1m")
    assert not first.screen_share and not first.camera_off and not first.always_relay
    second = _leave_and_read_beacon(b)
    assert second.event == "session-end" and second.mute_toggles == "0"
    assert second.nonce != first.nonce

    assert beacons.wait_counter(url, beacons.ACCEPTED, before + 2) == before + 2
    # Closing the pages fires pagehide on calls already left: no second beacon.
    for page in (a, b):
        page.close(run_before_unload=True)
    time.sleep(1.5)
    assert beacons.counter(url, beacons.ACCEPTED) == before + 2
