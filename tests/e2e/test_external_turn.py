"""An existing coturn as the relay: `parley dev --external-turn` (no built-in relay), two
Chromium pages with relay-only ICE, media through a real coturn (REST auth)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("playwright", reason="the playwright pip package is not installed")

from playwright.sync_api import Page

from tests import coturn
from tests.e2e import pages as ui
from tests.stack import Stack, start_stack

pytestmark = [pytest.mark.e2e, pytest.mark.coturn,
              pytest.mark.skipif(not coturn.available(), reason="coturn's turnserver missing")]

#: The selected pair's local candidate as getStats() reports it (type, relayed port, URL).
LOCAL_CANDIDATE = """async (id) => {
    const stats = await window.parley.connections()[id].getStats();
    let pair = null;
    stats.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId)
                               pair = stats.get(s.selectedCandidatePairId); });
    if (!pair) return null;
    const c = stats.get(pair.localCandidateId);
    return c ? { type: c.candidateType, port: c.port, url: c.url || "" } : null; }"""


@pytest.fixture(scope="module")
def turn() -> Iterator[coturn.Coturn]:
    server = coturn.start_coturn(secrets.token_urlsafe(24))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack_external_turn(turn: coturn.Coturn) -> Iterator[Stack]:
    s = start_stack(force_relay=True, extra=["--external-turn", turn.url],
                    env={"PARLEY_EXTERNAL_TURN_SECRET": turn.secret})
    yield s
    s.stop()


def test_external_turn_relay_forced_call_goes_through_coturn(
        stack_external_turn: Stack, turn: coturn.Coturn,
        new_page: Callable[[], Page]) -> None:
    out = stack_external_turn.output()
    running = next(line for line in out.splitlines() if "Parley is running at" in line)
    assert ", relay," not in running and "built-in relay not started" in out
    assert turn.secret not in out
    a, b = new_page(), new_page()
    room_url = ui.start_call(a, stack_external_turn.url)
    with a.expect_response(lambda r: r.url.endswith("/join")) as answer:
        a_id = ui.join(a)
    servers: list[dict[str, Any]] = answer.value.json()["ice_servers"]
    assert [s["urls"] for s in servers] == [[turn.url]]
    b_id = ui.join(b, room_url)
    for page, other in ((a, b_id), (b, a_id)):
        ui.wait_for_video_from(page, other)
        first = ui.frames_decoded(page, other)
        page.wait_for_timeout(500)
        assert ui.frames_decoded(page, other) > first > 0  # media flows
        assert ui.connection_states(page) == {other: "connected"}
        local = page.evaluate(LOCAL_CANDIDATE, other)
        assert local is not None and local["type"] == "relay", local
        # relayed by coturn: a port of its relay range, allocated through its listening port
        assert turn.min_port <= local["port"] <= turn.max_port, (local, turn)
        assert local["url"] == turn.url, local  # gathered from coturn's listening port
