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
