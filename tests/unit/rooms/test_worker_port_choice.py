"""Rooms' choice of a relay worker port per room (`services.rooms.relays.worker_port_for`).

Every member of one room gets the same port (so their allocations meet in one worker),
rooms spread evenly over the ports, and the choice comes from the room's keyed hash only.
"""

from __future__ import annotations

import collections

from services.common.hashing import room_key
from services.common.messages import RelayHeartbeat
from services.rooms.relays import ice_servers_for, worker_port_for

KEY = "k" * 32


def hb(worker_ports: list[int] | None = None, *, tls: int | None = 443) -> RelayHeartbeat:
    return RelayHeartbeat(relay_id="r", public_host="192.0.2.10", tls_port=tls, sent_at=0,
                          worker_ports=worker_ports or [])  # fmt: skip


def turn_urls(servers: list[dict[str, object]]) -> list[str]:
    return [u for s in servers if "username" in s for u in s["urls"]]  # type: ignore[attr-defined]


def test_worker_port_for_none_without_worker_ports() -> None:
    assert worker_port_for(hb(), room_key(KEY, "room")) is None


def test_worker_port_for_stable_per_room() -> None:
    relay = hb([3479, 3480, 3481, 3482])
    rk = room_key(KEY, "blue-fox-123456")
    assert len({worker_port_for(relay, rk) for _ in range(10)}) == 1
    assert worker_port_for(relay, rk) in relay.worker_ports


def test_worker_port_for_spreads_rooms_evenly() -> None:
    ports = [3479, 3480, 3481, 3482]
    relay = hb(ports)
    counts = collections.Counter(
        worker_port_for(relay, room_key(KEY, f"room-{i}")) for i in range(4000)
    )
    assert set(counts) == set(ports)
    assert all(850 <= n <= 1150 for n in counts.values()), counts  # 1000 each, sd 27


def test_worker_port_for_depends_on_the_key_not_the_name() -> None:
    relay = hb(list(range(3479, 3479 + 16)))
    names = [f"room-{i}" for i in range(64)]
    one = [worker_port_for(relay, room_key(KEY, n)) for n in names]
    other = [worker_port_for(relay, room_key("x" * 32, n)) for n in names]
    assert one != other  # another hash key, another assignment: the name alone decides nothing


def test_ice_servers_for_room_uses_its_worker_port_for_turn_udp_and_tcp() -> None:
    relay = hb([3479, 3480])
    rk = room_key(KEY, "room")
    port = worker_port_for(relay, rk)
    servers = ice_servers_for(relay, username="u", credential="c", stun_urls=[], room_key=rk)
    assert servers[0] == {"urls": ["stun:192.0.2.10:3478"]}
    assert turn_urls(servers) == [
        f"turn:192.0.2.10:{port}?transport=udp", f"turn:192.0.2.10:{port}?transport=tcp",
        "turns:192.0.2.10:443?transport=tcp"]  # fmt: skip


def test_ice_servers_for_room_without_worker_ports_as_before() -> None:
    relay = hb()
    with_key = ice_servers_for(relay, username="u", credential="c", stun_urls=[],
                               room_key=room_key(KEY, "room"))  # fmt: skip
    assert with_key == ice_servers_for(relay, username="u", credential="c", stun_urls=[])
    assert turn_urls(with_key)[:2] == [
        "turn:192.0.2.10:3478?transport=udp", "turn:192.0.2.10:3478?transport=tcp"]
