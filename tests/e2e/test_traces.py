"""One join, one trace: a real Chromium call (relay forced, Parley's relay) exported by
every service over OTLP/HTTP to a real receiver (tests/otlp.py).

The second page's join request carries the web client's `traceparent`; its trace holds
rooms' request span (child of the browser's), rooms' NATS publish, signalling's receive
and delivery on the first page's socket, rooms' trace hint to the relay and the relay's
allocation, and signalling's websocket join. No exported string holds the room name or an
address the test used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("playwright", reason="the playwright pip package is not installed")
pytest.importorskip("opentelemetry.proto", reason="opentelemetry-proto is not installed")

from playwright.sync_api import Page

from tests.e2e import pages as ui
from tests.otlp import OtlpReceiver, ReceivedSpan
from tests.stack import Stack, start_stack

pytestmark = pytest.mark.e2e

JOIN_ROUTE = "POST /api/rooms/{name}/join"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def traced_stack(receiver: OtlpReceiver) -> Iterator[Stack]:
    s = start_stack(force_relay=True, env=receiver.env())
    yield s
    s.stop()


def _one(spans: list[ReceivedSpan], **match: Any) -> ReceivedSpan:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in match.items())]
    assert len(found) == 1, (match, [(s.service, s.name, s.parent_span_id) for s in spans])
    return found[0]


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan, name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_span_id == parent.span_id and s.name == name]


def test_traces_one_join_is_one_trace_across_services(
        traced_stack: Stack, receiver: OtlpReceiver,
        new_page: Callable[[], Page]) -> None:
    a, b = new_page(), new_page()
    room_url = ui.start_call(a, traced_stack.url)
    room = room_url.rsplit("/", 1)[1]
    ui.join(a)
    ui.open_room(b, room_url)
    with b.expect_request(lambda r: r.url.endswith("/join")) as sent:
        ui.click_join(b)
    b.wait_for_function("() => window.parley.peerId() !== null", timeout=ui.JOIN_TIMEOUT_MS)
    header = sent.value.headers.get("traceparent", "")
    version, trace_id, parent_id, flags = header.split("-")
    assert (version, flags, len(trace_id), len(parent_id)) == ("00", "01", 32, 16), header
    # the call itself: B's relay allocations (relay forced) end the trace's last branch

    def complete(spans: list[ReceivedSpan]) -> bool:
        mine = [s for s in spans if s.trace_id == trace_id]
        names = {(s.service, s.name) for s in mine}
        return {("parley-rooms", JOIN_ROUTE), ("parley-signaling", "signaling deliver"),
                ("parley-relay", "turn allocate"),
                ("parley-signaling", "signaling join")} <= names

    spans = [s for s in receiver.wait_for(complete) if s.trace_id == trace_id]

    # join -> rooms: rooms' request span is the child of the browser's traceparent
    join = _one(spans, service="parley-rooms", name=JOIN_ROUTE)
    assert join.parent_span_id == parent_id
    assert join.attributes["http.route"] == "/api/rooms/{name}/join"
    # rooms -> NATS publish (the slot taken) -> signalling's receive -> delivery to A's socket
    publishes = _children(spans, join, "bus publish")
    members = [p for p in publishes
               if str(p.attributes["messaging.destination.name"]).endswith(".members")]
    assert len(members) == 1, publishes
    [received] = _children(spans, members[0], "bus receive")
    assert received.service == "parley-signaling"
    [delivered] = _children(spans, received, "signaling deliver")
    assert delivered.service == "parley-signaling"
    # rooms -> trace hint to the relay -> the relay's allocations for B's credential
    [hint] = [p for p in publishes
              if ".relay.trace." in str(p.attributes["messaging.destination.name"])]
    allocations = _children(spans, hint, "turn allocate")
    assert allocations and {s.service for s in allocations} == {"parley-relay"}
    # the websocket join continues the same trace (another parent id from the browser)
    ws_joins = [s for s in spans if s.name == "signaling join"]  # a resume would add one
    assert ws_joins and {s.service for s in ws_joins} == {"parley-signaling"}
    assert not {s.parent_span_id for s in ws_joins} & {"", parent_id, join.span_id}

    # a client's tracestate is free text: never taken, so never exported
    sneaky = "00-1bf7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01"
    r = httpx.post(f"{traced_stack.url}/api/rooms/{room}/join", json={},
                   headers={"traceparent": sneaky, "tracestate": "x=198.51.100.7"})
    assert r.status_code == 200, r.text
    receiver.wait_for(lambda got: any(g.trace_id == sneaky[3:35] for g in got))

    # privacy: no exported string of any span (every trace) names the room or an address
    forbidden = [room, "127.0.0.1", "::1", "localhost", str(traced_stack.port),
                 "198.51.100.7"]
    for span in receiver.spans():
        for text in span.texts:
            for word in forbidden:
                assert word not in text, (span.service, span.name, text)
