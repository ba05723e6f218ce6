"""Chromium, relay forced, through `parley dev` with the relay in its other packet modes.

The rest of the e2e suite runs the relay's defaults (compiled path, in-process delivery on).
Here a real call runs with the pure-Python path, with in-process delivery off, and with
both off: media flows both ways over a relay candidate pair, and the relay's own /metrics
says whether its packets were handed over in process (both pages share the dev relay's one
worker, so with the shortcut on every relayed packet of the call is delivered in process).
"""

from __future__ import annotations

import re
import time
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


def _counter(text: str, name: str) -> float:
    found = re.findall(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", text, re.M)
    return sum(float(x) for x in found)


def _relayed_and_local(metrics_url: str, *, want_local: bool) -> tuple[float, float]:
    """(packets relayed, of them delivered in process) from the relay's /metrics, once its
    workers have published the call's packets (they publish their counters every tick, so
    a read right after the first frames can still show none), within 20 s."""
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(f"{metrics_url}/metrics", timeout=5) as r:
            text = r.read().decode()
        relayed = _counter(text, "parley_relay_packets_relayed_total")
        local = _counter(text, "parley_relay_local_delivered_total")
        if (relayed > 0 and (local > 0 or not want_local)) or time.monotonic() > deadline:
            return relayed, local
        time.sleep(0.25)


@pytest.mark.parametrize("mode", list(MODES))
def test_relay_forced_call_in_every_relay_mode(mode: str, new_page: NewPage) -> None:
    stack = start_stack(force_relay=True, env=MODES[mode])
    try:
        a, b = new_page(), new_page()
        room_url = ui.start_call(a, stack.url)
        a_id = ui.join(a)
        b_id = ui.join(b, room_url)
        pairs = []
        for page, other in ((a, b_id), (b, a_id)):
            ui.wait_for_video_from(page, other)
            assert ui.connection_states(page) == {other: "connected"}
            pair = ui.selected_pair(page, other)
            assert pair is not None, "no selected candidate pair"
            assert "relay" in (pair.local_type, pair.remote_type), pair
            pairs.append(pair)
        local_on = "PARLEY_RELAY_LOCAL_DELIVERY" not in MODES[mode]
        relayed, local = _relayed_and_local(stack.internal_url("relay"), want_local=local_on)
        assert relayed > 0, "media flowed through the relay, yet it counted no packet"
        if local_on:
            assert local > 0, (f"both pages share the relay's worker: none of {relayed} "
                               f"packets in process; selected pairs {pairs}")
        else:
            assert local == 0, f"in-process delivery is off, yet {local} of {relayed} packets"
    finally:
        stack.stop()
