"""The gateway's sans-I/O core: Ingress-style prefix matching and forwarded headers."""

from __future__ import annotations

import pytest

from services.gateway.routing import (
    Route,
    RouteTable,
    forwarded_headers,
    is_websocket,
    parse_route,
    response_headers,
)


def test_route_table_ingress_longest_prefix_by_segment() -> None:
    table = RouteTable.ingress({"rooms": ["r:1"], "signaling": ["s:1"], "metrics": ["m:1"]})
    got = {t: table.match(t.encode()).upstreams[0]  # type: ignore[union-attr]
           for t in ("/", "/ws", "/ws?x=1", "/ws/", "/wsx", "/beacon/schema", "/stats.json",
                     "/stats", "/reports")}
    assert got == {"/": "r:1", "/ws": "s:1", "/ws?x=1": "s:1", "/ws/": "s:1", "/wsx": "r:1",
                   "/beacon/schema": "m:1", "/stats.json": "m:1", "/stats": "r:1",
                   "/reports": "m:1"}


def test_route_table_without_metrics_sends_its_paths_to_rooms() -> None:
    table = RouteTable.ingress({"rooms": ["r:1"], "signaling": ["s:1"]})
    assert table.match(b"/beacon").upstreams == ["r:1"]  # type: ignore[union-attr]


def test_route_table_absolute_form_target_unmatched() -> None:
    table = RouteTable.ingress({"rooms": ["r:1"]})
    assert table.match(b"http://evil.example/") is None


def test_route_round_robin_over_replicas() -> None:
    route = Route("/ws", ["a:1", "b:2"])
    assert [route.next_upstream() for _ in range(4)] == ["a:1", "b:2", "a:1", "b:2"]


@pytest.mark.parametrize("bad", ["ws=a:1", "/ws", "/ws=", "/ws=a", "/ws=a:99999", "/ws=:1"])
def test_parse_route_invalid(bad: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_route(bad)


def test_is_websocket_needs_both_headers() -> None:
    assert is_websocket([(b"Connection", b"keep-alive, Upgrade"), (b"Upgrade", b"WebSocket")])
    assert not is_websocket([(b"Upgrade", b"websocket")])
    assert not is_websocket([(b"Connection", b"upgrade"), (b"Upgrade", b"h2c")])


def test_forwarded_headers_untrusted_peer_spoofing_dropped() -> None:
    out = forwarded_headers(
        [(b"Host", b"h.example"), (b"X-Forwarded-For", b"1.2.3.4"),
         (b"X-Forwarded-Host", b"evil.example"), (b"X-Parley-Local-Addr", b"9.9.9.9"),
         (b"Forwarded", b"for=1.2.3.4"), (b"Connection", b"close"), (b"TE", b"trailers")],
        peer="::ffff:10.0.0.2", local="10.0.0.1", tls=True, trusted_peer=False)
    assert out == [(b"host", b"h.example"), (b"x-forwarded-for", b"10.0.0.2"),
                   (b"x-forwarded-proto", b"https"), (b"x-forwarded-host", b"h.example"),
                   (b"x-parley-local-addr", b"10.0.0.1")]


def test_forwarded_headers_websocket_keeps_upgrade() -> None:
    out = forwarded_headers([(b"Host", b"h"), (b"Connection", b"Upgrade"),
                             (b"Upgrade", b"websocket")],
                            peer="127.0.0.1", local="127.0.0.1", tls=False, trusted_peer=True,
                            websocket=True)
    assert (b"connection", b"Upgrade") in out and (b"upgrade", b"websocket") in out


def test_response_headers_drop_hop_by_hop_keep_framing() -> None:
    assert response_headers([(b"Connection", b"close, X-A"), (b"X-A", b"1"),
                             (b"Content-Length", b"3"), (b"Keep-Alive", b"5")]) == [
        (b"Content-Length", b"3")]
