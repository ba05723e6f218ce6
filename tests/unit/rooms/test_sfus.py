"""The SFU registry: liveness, least-loaded choice, draining, and the mesh → SFU rule."""

from __future__ import annotations

from services.common.messages import SfuHeartbeat
from services.rooms.sfus import SfuRegistry, wants_sfu


def hb(sfu_id: str, *, peers: int = 0, capacity: int = 100, draining: bool = False,
       pps: float = 0.0) -> SfuHeartbeat:
    return SfuHeartbeat(sfu_id=sfu_id, peers=peers, capacity=capacity, draining=draining,
                        packets_per_second=pps, sent_at=0.0)


def test_pick_least_loaded_not_draining_not_full() -> None:
    r = SfuRegistry(ttl=10)
    r.observe(hb("a", peers=50), now=0)
    r.observe(hb("b", peers=10), now=0)
    r.observe(hb("c", peers=0, draining=True), now=0)
    r.observe(hb("d", peers=5, capacity=5), now=0)
    pick = r.pick(now=1)
    assert pick is not None and pick.sfu_id == "b"
    assert r.counts(now=1) == {"usable": 3, "draining": 1}


def test_ties_broken_by_packet_rate_then_id() -> None:
    r = SfuRegistry(ttl=10)
    r.observe(hb("b", pps=5), now=0)
    r.observe(hb("a", pps=5), now=0)
    r.observe(hb("c", pps=1), now=0)
    assert [r.pick(now=0).sfu_id] == ["c"]  # type: ignore[union-attr]


def test_alive_keeps_draining_and_drops_silent() -> None:
    r = SfuRegistry(ttl=10)
    r.observe(hb("a", draining=True), now=0)
    assert r.alive("a", now=5)  # a room pinned to a draining SFU stays on it
    assert r.pick(now=5) is None
    assert not r.alive("a", now=10.5)  # heartbeat lost: its rooms move
    assert not r.alive("zz", now=0)


def test_wants_sfu() -> None:
    assert not wants_sfu(members=4, mesh_max=4, current=None)
    assert wants_sfu(members=5, mesh_max=4, current=None)
    assert wants_sfu(members=1, mesh_max=0, current=None)  # 0: always the SFU
    assert wants_sfu(members=2, mesh_max=4, current="sfu")  # sticky
