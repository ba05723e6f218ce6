"""The live SFU registry and the choice of a room's SFU: sans-I/O, `now` passed in.

Like the relay registry (`services.rooms.relays`), with one difference that matters: a
room pinned to a draining SFU stays on it (its calls go on; all of a room must share one
SFU), so `alive` ignores draining while `pick` never chooses a draining SFU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from services.common.messages import SfuHeartbeat

MediaPath = Literal["mesh", "sfu"]
TICKET_TTL: Final[int] = 120


@dataclass(frozen=True, slots=True)
class _Seen:
    heartbeat: SfuHeartbeat
    received_at: float


def sfu_load(hb: SfuHeartbeat) -> float:
    """Share of capacity in use (PeerConnections), or the count without a capacity."""
    return hb.peers / hb.capacity if hb.capacity else float(hb.peers)


class SfuRegistry:
    """SFUs heard on the bus; those heard within `ttl` seconds are alive."""

    def __init__(self, *, ttl: float) -> None:
        self.ttl = ttl
        self._sfus: dict[str, _Seen] = {}

    def observe(self, hb: SfuHeartbeat, *, now: float) -> None:
        self._sfus[hb.sfu_id] = _Seen(hb, now)
        for sid in [s for s, seen in self._sfus.items() if now - seen.received_at > self.ttl * 3]:
            del self._sfus[sid]

    def alive(self, sfu_id: str, *, now: float) -> bool:
        """Heard from within the TTL (draining or not)."""
        seen = self._sfus.get(sfu_id)
        return seen is not None and now - seen.received_at <= self.ttl

    def pick(self, *, now: float) -> SfuHeartbeat | None:
        """The least-loaded live SFU that is not draining (then packets/s, then id)."""
        candidates = [s.heartbeat for s in self._sfus.values()
                      if now - s.received_at <= self.ttl and not s.heartbeat.draining
                      and s.heartbeat.peers < s.heartbeat.capacity]
        if not candidates:
            return None
        return min(candidates, key=lambda hb: (sfu_load(hb), hb.packets_per_second, hb.sfu_id))

    def counts(self, *, now: float) -> dict[str, int]:
        live = [s.heartbeat for s in self._sfus.values() if now - s.received_at <= self.ttl]
        draining = sum(1 for hb in live if hb.draining)
        return {"usable": len(live) - draining, "draining": draining}


def wants_sfu(*, members: int, mesh_max: int, current: MediaPath | None) -> bool:
    """Whether a room of `members` people goes through the SFU (docs/sfu.md): once it is,
    it stays; else when it has more people than `mesh_max` (0: always)."""
    return current == "sfu" or members > mesh_max
