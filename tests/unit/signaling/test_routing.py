"""Unit tests of bus envelopes and local fan-out."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from services.signaling.errors import PresenceError
from services.signaling.protocol import MediaState
from services.signaling.routing import BusHeader, Hub, pack, unpack


@dataclass(eq=False)
class FakeSink:
    conn_id: str
    accept: bool = True
    frames: list[str] = field(default_factory=list)
    kicked: list[tuple[int, str]] = field(default_factory=list)

    def offer(self, frame: str) -> bool:
        if self.accept:
            self.frames.append(frame)
        return self.accept

    def kick(self, code: int, reason: str) -> None:
        self.kicked.append((code, reason))


def hub_with(*peers: str) -> tuple[Hub, dict[str, FakeSink]]:
    hub, sinks = Hub(), {}
    for peer in peers:
        sinks[peer] = FakeSink(f"c-{peer}")
        hub.add("rk", peer, sinks[peer])
    return hub, sinks


def test_pack_unpack_round_trip() -> None:
    header = BusHeader(kind="room", src="a", type="chat", sent=12.5)
    frame = '{"type":"chat","from":"a","text":"line\\nbreak","at":1}'
    assert unpack(pack(header, frame)) == (header, frame)


def test_unpack_without_header_line() -> None:
    with pytest.raises(PresenceError):
        unpack(b"no header")


def test_unpack_bad_header() -> None:
    with pytest.raises(PresenceError):
        unpack(b'{"v":2}\n{}')


def test_hub_room_frame_skips_sender() -> None:
    hub, sinks = hub_with("a", "b", "c")
    d = hub.deliver("rk", BusHeader(kind="room", src="a", type="chat"), "F")
    assert d.delivered == 2
    assert (sinks["a"].frames, sinks["b"].frames, sinks["c"].frames) == ([], ["F"], ["F"])


def test_hub_peer_frame_reaches_only_addressee() -> None:
    hub, sinks = hub_with("a", "b", "c")
    d = hub.deliver("rk", BusHeader(kind="peer", src="a", to="c", type="signal"), "S")
    assert d.delivered == 1
    assert (sinks["b"].frames, sinks["c"].frames) == ([], ["S"])


def test_hub_peer_frame_for_peer_elsewhere_is_ignored() -> None:
    hub, _ = hub_with("a")
    assert hub.deliver("rk", BusHeader(kind="peer", src="a", to="z"), "S").delivered == 0


def test_hub_unknown_room_is_ignored() -> None:
    hub, _ = hub_with("a")
    assert hub.deliver("other", BusHeader(kind="room", src="x"), "F").delivered == 0


def test_hub_full_outbox_not_counted() -> None:
    hub, sinks = hub_with("a", "b")
    sinks["b"].accept = False
    assert hub.deliver("rk", BusHeader(kind="room", src="a"), "F").delivered == 0


def test_hub_view_follows_events() -> None:
    hub, _ = hub_with("a")
    view = hub.view("rk")
    hub.deliver("rk", BusHeader(kind="room", src="b", event="joined", media=MediaState()), "J")
    assert "b" in view
    muted = MediaState(audio=False)
    hub.deliver("rk", BusHeader(kind="room", src="b", event="media", media=muted), "M")
    assert view["b"] == muted
    hub.deliver("rk", BusHeader(kind="room", src="b", event="left"), "L")
    assert "b" not in view


def test_hub_sync_view_replaces_in_place() -> None:
    hub, _ = hub_with("a")
    view = hub.view("rk")
    hub.sync_view("rk", {"a": MediaState(), "q": MediaState(video=False)})
    assert set(view) == {"a", "q"}


def test_hub_kick_closes_other_connection_of_peer() -> None:
    hub, sinks = hub_with("a")
    hub.deliver("rk", BusHeader(kind="kick", src="a", to="a", conn="c-new"), "")
    assert sinks["a"].kicked == [(4000, "replaced by a resumed socket")]


def test_hub_kick_spares_the_new_connection() -> None:
    hub, sinks = hub_with("a")
    hub.deliver("rk", BusHeader(kind="kick", src="a", to="a", conn="c-a"), "")
    assert sinks["a"].kicked == []


def test_hub_add_reports_first_and_replaced() -> None:
    hub = Hub()
    s1, s2 = FakeSink("1"), FakeSink("2")
    assert hub.add("rk", "a", s1) == (True, None)
    assert hub.add("rk", "a", s2) == (False, s1)


def test_hub_remove_last_socket_empties_room() -> None:
    hub = Hub()
    s1, s2 = FakeSink("1"), FakeSink("2")
    hub.add("rk", "a", s1)
    hub.add("rk", "b", s2)
    assert not hub.remove("rk", "a", s1)
    assert hub.remove("rk", "b", s2)
    assert hub.rooms == {}


def test_hub_remove_stale_sink_keeps_replacement() -> None:
    hub = Hub()
    old, new = FakeSink("1"), FakeSink("2")
    hub.add("rk", "a", old)
    hub.add("rk", "a", new)
    assert not hub.remove("rk", "a", old)
    assert hub.local_peers("rk") == ["a"]


def test_hub_pending_slot_shown_until_peer_joins() -> None:
    hub, _ = hub_with("a")
    hub.sync_view("rk", {"a": MediaState(), "b": MediaState()}, pending=["b", "c"])
    assert hub.rooms["rk"].pending == {"c"}  # b has a socket: it is in the view
    assert hub.add_pending("rk", "d")
    assert not hub.add_pending("rk", "d")  # not news twice
    assert not hub.add_pending("rk", "a")  # a local socket is not pending
    assert not hub.add_pending("other", "x")  # not a room of this replica
    hub.deliver("rk", BusHeader(kind="room", src="d", event="joined"), "{}")
    assert hub.rooms["rk"].pending == {"c"}
    assert not hub.add_pending("rk", "d")  # joined meanwhile: the event came late


def test_hub_pending_dropped_and_pruned() -> None:
    hub, _ = hub_with("a")
    hub.sync_view("rk", {"a": MediaState()}, pending=["b", "c", "d"])
    assert hub.drop_pending("rk", "b")
    assert not hub.drop_pending("rk", "b")
    assert hub.prune_pending("rk", {"a", "d"}) == ["c"]
    assert hub.rooms["rk"].pending == {"d"}
    assert hub.prune_pending("other", set()) == []


def test_hub_broadcast_reaches_every_local_socket() -> None:
    hub, sinks = hub_with("a", "b")
    sinks["b"].accept = False
    assert hub.broadcast("rk", "frame") == 1
    assert sinks["a"].frames == ["frame"]
    assert hub.broadcast("other", "frame") == 0
