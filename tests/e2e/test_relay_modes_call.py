"""Chromium, relay forced, through `parley dev` with the relay in its other packet modes.

The rest of the e2e suite runs the relay's defaults (compiled path, in-process delivery on).
Here a real call runs with the pure-Python path, with in-process delivery off, and with
both off: media flows both ways over a relay candidate pair, and the relay's own /metrics
says whether its packets were handed over in process (both pages share the dev relay's one
worker, so with the shortcut on every relayed packet of the call is delivered in process).
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable

import pytest

pytest.importorskip("playwright", reason="the playwright pip package is not installed")

from playwright.sync_api import Page

from tests.e2e import pages as ui
from tests.stack import start_stack

NewPage = Callable[[], Page]
PYTHON = {"PARLEY_RELAY_FASTPATH": "off"}
KERNEL = {"PARLEY_RELAY_LOCAL_DELIVERY": "false"}
MODES = {"python": PYTHON, "kernel": KERNEL, "python-kernel": {**PYTHON, **KERNEL}}


def _local_delivered(metrics_url: str) -> float:
    with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=5) as r:
        text = r.read().decode()
    found = re.findall(r"^parley_relay_local_delivered_total(?:\{[^}]*\})? ([0-9.e+]+)$",
                       text, re.M)
    return sum(float(x) for x in found)


@pytest.mark.parametrize("mode", list(MODES))
def test_relay_forced_call_in_every_relay_mode(mode: str, new_page: NewPage) -> None:
    stack = start_stack(force_relay=True, env=MODES[mode])
    try:
        a, b = new_page(), new_page()
        room_url = ui.start_call(a, stack.url)
        a_id = ui.join(a)
        b_id = ui.join(b, room_url)
        for page, other in ((a, b_id), (b, a_id)):
            ui.wait_for_video_from(page, other)
            assert ui.connection_states(page) == {other: "connected"}
            pair = ui.selected_pair(page, other)
            assert pair is not None, "no selected candidate pair"
            assert "relay" in (pair.local_type, pair.remote_type), pair
        delivered = _local_delivered(stack.internal_url("relay"))
        if "PARLEY_RELAY_LOCAL_DELIVERY" in MODES[mode]:
            assert delivered == 0, f"in-process delivery is off, yet {delivered} packets"
        else:
            assert delivered > 0, "both pages share the relay's worker: none in process"
    finally:
        stack.stop()
