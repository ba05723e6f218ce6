"""The live relay registry and relay choice: sans-I/O, fed by heartbeats, `now` passed in.

A relay is *live* while its last heartbeat is younger than the TTL (`PARLEY_RELAY_TTL`,
10 s); rooms hands out only live relays. It is *late* once it has missed its heartbeats:
no beat for `LATE_AFTER_BEATS` times its own observed interval (so ~2.5 s for the dev
stack's 1 s beats, ~5 s for the default 2 s). A late relay is still live (a NATS hiccup
delays every beat), so a room keeps it; but when a member of the room reports that ICE
failed (`POST /api/rooms/{name}/ice`) and the room's relay is late, the room moves to a
punctual one at once, instead of waiting for the TTL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from services.common.messages import RelayHeartbeat

LATE_AFTER_BEATS: Final[float] = 2.5  # missed beats (in observed intervals) that make it late
MIN_LATE_SECONDS: Final[float] = 1.0  # never late sooner than this after a beat


@dataclass(frozen=True, slots=True)
class _Seen:
    heartbeat: RelayHeartbeat
    received_at: float
    interval: float | None  # smoothed time between its beats, once two were heard


def load_of(hb: RelayHeartbeat) -> float:
    """How loaded a relay is: allocation share of its capacity, or allocation count."""
    if hb.capacity:
        return hb.allocations / hb.capacity
    return float(hb.allocations)


class RelayRegistry:
    """Relays seen on the bus; the ones heard from within `ttl` seconds are live."""

    def __init__(self, *, ttl: float) -> None:
        self.ttl = ttl
        self._relays: dict[str, _Seen] = {}

    def observe(self, hb: RelayHeartbeat, *, now: float) -> None:
        """Record a heartbeat (a newer one replaces an older one) and learn its cadence."""
        prev = self._relays.get(hb.relay_id)
        interval = prev.interval if prev else None
        if prev is not None and 0 < now - prev.received_at <= self.ttl:
            gap = now - prev.received_at
            interval = gap if interval is None else (interval + gap) / 2
        self._relays[hb.relay_id] = _Seen(hb, now, interval)

    def late(self, relay_id: str, *, now: float) -> bool:
        """Whether the relay missed its heartbeats (unknown or past the TTL: late too).

        Late means no beat for `LATE_AFTER_BEATS` observed intervals (at least
        `MIN_LATE_SECONDS`); before its cadence is known, the TTL decides.
        """
        seen = self._relays.get(relay_id)
        if seen is None:
            return True
        quiet = now - seen.received_at
        if seen.interval is None:
            return quiet > self.ttl
        return quiet > min(self.ttl, max(MIN_LATE_SECONDS, LATE_AFTER_BEATS * seen.interval))

    def forget_stale(self, *, now: float) -> None:
        for rid in [r for r, s in self._relays.items() if now - s.received_at > self.ttl * 3]:
            del self._relays[rid]

    def live(self, *, now: float) -> list[RelayHeartbeat]:
        """Relays heard from within the TTL."""
        return [s.heartbeat for s in self._relays.values() if now - s.received_at <= self.ttl]

    def usable(self, relay_id: str, *, now: float) -> RelayHeartbeat | None:
        """The relay if it is live and not draining."""
        seen = self._relays.get(relay_id)
        if seen is None or now - seen.received_at > self.ttl or seen.heartbeat.draining:
            return None
        return seen.heartbeat

    def counts(self, *, now: float) -> dict[str, int]:
        """Live relays by state: `usable` (handed out) and `draining` (kept, never chosen)."""
        live = self.live(now=now)
        draining = sum(1 for hb in live if hb.draining)
        return {"usable": len(live) - draining, "draining": draining}

    def pick(self, *, now: float, exclude: str | None = None) -> RelayHeartbeat | None:
        """The least-loaded live relay that is not draining (a punctual one before a late
        one, ties broken by id), other than `exclude`; or None."""
        candidates = [hb for hb in self.live(now=now)
                      if not hb.draining and hb.relay_id != exclude]
        if not candidates:
            return None
        return min(candidates, key=lambda hb: (self.late(hb.relay_id, now=now), load_of(hb),
                                               hb.allocations, hb.relay_id))

    def choose_for_room(self, assigned: str | None, *, now: float,
                        failing: bool = False) -> RelayHeartbeat | None:
        """The relay a room should use now (all its members use the same one).

        Its `assigned` relay while that is usable, unless a member reports failure
        (`failing`) and the relay is late while a punctual one exists; else the least
        loaded other live relay; None when there is none. The caller re-pins the room when
        the answer is not `assigned`.
        """
        current = self.usable(assigned, now=now) if assigned else None
        if current is not None and not (failing and self.late(current.relay_id, now=now)):
            return current
        other = self.pick(now=now, exclude=assigned)
        if current is not None and (other is None or self.late(other.relay_id, now=now)):
            return current  # nowhere better to go: keep it, it may only be slow
        return other


def worker_port_for(hb: RelayHeartbeat, room_key: str) -> int | None:
    """The relay's worker port for one room, or None when the relay announces none.

    Every member of a room gets the same port, so their allocations live in one relay
    worker and its packets between them stay in that process (in-process delivery); rooms
    spread evenly over the workers. `room_key` is the room's keyed hash
    (`services.common.hashing.room_key`), never its name: the choice reveals nothing about
    the name to whoever lacks the hash key.
    """
    if not hb.worker_ports:
        return None
    digest = hashlib.sha256(room_key.encode()).digest()
    return hb.worker_ports[int.from_bytes(digest[:8], "big") % len(hb.worker_ports)]


def ice_servers_for(
    hb: RelayHeartbeat | None, *, username: str, credential: str, stun_urls: list[str],
    host: str | None = None, room_key: str | None = None,
) -> list[dict[str, object]]:
    """RTCIceServer entries for a relay (STUN + TURN UDP/TCP/TLS), or STUN-only without one.

    `host` replaces the relay's announced address (see `services.common.publicurl.relay_host`).
    `room_key` (the room's keyed hash) picks the relay's worker port for the TURN UDP and
    TCP URLs when it announces worker ports (`worker_port_for`); STUN and TLS keep the
    shared ports.
    """
    if hb is None:
        return [{"urls": list(stun_urls)}] if stun_urls else []
    address = host or hb.public_host
    host = f"[{address}]" if ":" in address else address
    worker = worker_port_for(hb, room_key) if room_key is not None else None
    stun: list[str] = []
    turn: list[str] = []
    if hb.udp_port:
        stun.append(f"stun:{host}:{hb.udp_port}")
        turn.append(f"turn:{host}:{worker or hb.udp_port}?transport=udp")
    if hb.tcp_port:
        turn.append(f"turn:{host}:{worker or hb.tcp_port}?transport=tcp")
    if hb.tls_port:
        turn.append(f"turns:{host}:{hb.tls_port}?transport=tcp")
    servers: list[dict[str, object]] = []
    if stun:
        servers.append({"urls": stun})
    servers.append({"urls": turn, "username": username, "credential": credential})
    return servers
