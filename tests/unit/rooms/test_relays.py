from __future__ import annotations

from services.common.messages import RelayHeartbeat
from services.rooms.relays import RelayRegistry, ice_servers_for


def hb(rid: str, allocations: int = 0, *, draining: bool = False, capacity: int | None = None,
       tls: int | None = None) -> RelayHeartbeat:
    return RelayHeartbeat(relay_id=rid, public_host="192.0.2.10", allocations=allocations,
                          draining=draining, capacity=capacity, tls_port=tls, sent_at=0)


def test_relay_registry_pick_least_loaded() -> None:
    reg = RelayRegistry(ttl=10)
    for r in (hb("a", 5), hb("b", 2), hb("c", 9)):
        reg.observe(r, now=100)
    assert reg.pick(now=101).relay_id == "b"  # type: ignore[union-attr]


def test_relay_registry_never_draining() -> None:
    reg = RelayRegistry(ttl=10)
    reg.observe(hb("a", 0, draining=True), now=100)
    reg.observe(hb("b", 50), now=100)
    assert reg.pick(now=100).relay_id == "b"  # type: ignore[union-attr]
    assert reg.usable("a", now=100) is None


def test_relay_registry_stale_relays_not_live() -> None:
    reg = RelayRegistry(ttl=10)
    reg.observe(hb("a"), now=100)
    assert reg.pick(now=111) is None
    assert reg.usable("a", now=111) is None


def test_relay_registry_load_uses_capacity() -> None:
    reg = RelayRegistry(ttl=10)
    reg.observe(hb("small", 5, capacity=10), now=0)
    reg.observe(hb("big", 8, capacity=100), now=0)
    assert reg.pick(now=0).relay_id == "big"  # type: ignore[union-attr]


def test_relay_registry_tie_broken_by_id() -> None:
    reg = RelayRegistry(ttl=10)
    reg.observe(hb("z"), now=0)
    reg.observe(hb("m"), now=0)
    assert reg.pick(now=0).relay_id == "m"  # type: ignore[union-attr]


def test_relay_registry_all_draining_none() -> None:
    reg = RelayRegistry(ttl=10)
    reg.observe(hb("a", draining=True), now=0)
    assert reg.pick(now=0) is None


def test_ice_servers_for_relay() -> None:
    servers = ice_servers_for(hb("a", tls=443), username="u", credential="c", stun_urls=[])
    assert servers[0] == {"urls": ["stun:192.0.2.10:3478"]}
    assert servers[1]["urls"] == [
        "turn:192.0.2.10:3478?transport=udp", "turn:192.0.2.10:3478?transport=tcp",
        "turns:192.0.2.10:443?transport=tcp"]
    assert servers[1]["username"] == "u" and servers[1]["credential"] == "c"


def test_ice_servers_for_no_relay() -> None:
    assert ice_servers_for(None, username="", credential="", stun_urls=[]) == []
    assert ice_servers_for(None, username="", credential="", stun_urls=["stun:x:3478"]) == [
        {"urls": ["stun:x:3478"]}]


def test_relay_registry_counts_by_state_live_only() -> None:
    reg = RelayRegistry(ttl=10)
    reg.observe(hb("a"), now=100)
    reg.observe(hb("b", draining=True), now=100)
    reg.observe(hb("old"), now=80)
    assert reg.counts(now=101) == {"usable": 1, "draining": 1}
    assert reg.counts(now=200) == {"usable": 0, "draining": 0}


def test_relay_registry_collector_exports_counts_without_ids() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from services.rooms.relaystats import RelayRegistryCollector

    reg = RelayRegistry(ttl=10)
    reg.observe(hb("relay-secret-id"), now=100)
    prom = CollectorRegistry()
    prom.register(RelayRegistryCollector(reg, clock=lambda: 101.0))
    text = generate_latest(prom).decode()
    assert 'parley_rooms_relays{state="usable"} 1.0' in text
    assert 'parley_rooms_relays{state="draining"} 0.0' in text
    assert "relay-secret-id" not in text and "192.0.2.10" not in text


def _beating(reg: RelayRegistry, rid: str, *, every: float, until: float,
             allocations: int = 0) -> None:
    """Heartbeats of `rid` every `every` seconds from 0 up to `until`."""
    t = 0.0
    while t <= until:
        reg.observe(hb(rid, allocations), now=t)
        t += every


def test_relay_registry_late_after_missed_beats() -> None:
    reg = RelayRegistry(ttl=10)
    _beating(reg, "a", every=1.0, until=5.0)  # last beat at 5
    assert not reg.late("a", now=7.0)
    assert reg.late("a", now=7.6)  # 2.5 beats missed
    assert reg.usable("a", now=7.6) is not None  # still live: the TTL has not passed


def test_relay_registry_late_uses_ttl_before_cadence_known() -> None:
    reg = RelayRegistry(ttl=10)
    reg.observe(hb("a"), now=0)
    assert not reg.late("a", now=9)
    assert reg.late("a", now=11)
    assert reg.late("never-seen", now=0)


def test_relay_registry_late_never_sooner_than_a_second() -> None:
    reg = RelayRegistry(ttl=10)
    _beating(reg, "a", every=0.1, until=1.0)
    assert not reg.late("a", now=1.9)
    assert reg.late("a", now=2.1)


def test_relay_registry_pick_prefers_punctual_relays() -> None:
    reg = RelayRegistry(ttl=10)
    _beating(reg, "busy", every=1.0, until=6.0, allocations=50)
    _beating(reg, "idle", every=1.0, until=3.0)  # stopped beating at 3
    assert reg.pick(now=6.5).relay_id == "busy"  # type: ignore[union-attr]
    assert reg.pick(now=6.5, exclude="busy").relay_id == "idle"  # type: ignore[union-attr]


def test_choose_for_room_keeps_assigned_relay_while_usable() -> None:
    reg = RelayRegistry(ttl=10)
    _beating(reg, "a", every=1.0, until=4.0, allocations=9)
    _beating(reg, "b", every=1.0, until=8.0)
    # a is late at 8 but live; a join (no failure reported) keeps the room where it is
    assert reg.choose_for_room("a", now=8.0).relay_id == "a"  # type: ignore[union-attr]


def test_choose_for_room_moves_when_member_fails_on_late_relay() -> None:
    reg = RelayRegistry(ttl=10)
    _beating(reg, "a", every=1.0, until=4.0)
    _beating(reg, "b", every=1.0, until=8.0, allocations=9)
    chosen = reg.choose_for_room("a", now=8.0, failing=True)
    assert chosen is not None and chosen.relay_id == "b"


def test_choose_for_room_failing_on_punctual_relay_stays() -> None:
    reg = RelayRegistry(ttl=10)
    _beating(reg, "a", every=1.0, until=8.0, allocations=9)
    _beating(reg, "b", every=1.0, until=8.0)
    # the relay answers its beats: the member's failure is its own network, not the relay
    assert reg.choose_for_room("a", now=8.2, failing=True).relay_id == "a"  # type: ignore[union-attr]


def test_choose_for_room_failing_with_nowhere_better_stays() -> None:
    reg = RelayRegistry(ttl=10)
    _beating(reg, "a", every=1.0, until=4.0)  # late (a NATS hiccup delays every beat)
    _beating(reg, "b", every=1.0, until=4.0)
    assert reg.choose_for_room("a", now=8.0, failing=True).relay_id == "a"  # type: ignore[union-attr]


def test_choose_for_room_dead_relay_replaced_within_ttl() -> None:
    reg = RelayRegistry(ttl=10)
    _beating(reg, "a", every=1.0, until=4.0)
    _beating(reg, "b", every=1.0, until=16.0, allocations=30)
    assert reg.choose_for_room("a", now=14.5).relay_id == "b"  # type: ignore[union-attr]
    assert reg.choose_for_room(None, now=14.5).relay_id == "b"  # type: ignore[union-attr]
    assert reg.choose_for_room("gone", now=14.5).relay_id == "b"  # type: ignore[union-attr]


def test_choose_for_room_none_without_relays() -> None:
    assert RelayRegistry(ttl=10).choose_for_room("a", now=0, failing=True) is None


def test_relay_registry_restarted_relay_keeps_its_cadence() -> None:
    reg = RelayRegistry(ttl=10)
    _beating(reg, "a", every=1.0, until=4.0)
    reg.observe(hb("a"), now=30.0)  # back after a restart: the gap is not a cadence
    assert not reg.late("a", now=32.0)
    assert reg.late("a", now=33.0)
