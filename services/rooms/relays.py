"""The live relay registry and relay choice: sans-I/O, fed by heartbeats, `now` passed in."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.messages import RelayHeartbeat


@dataclass(frozen=True, slots=True)
class _Seen:
    heartbeat: RelayHeartbeat
    received_at: float


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
        """Record a heartbeat (a newer one replaces an older one)."""
        self._relays[hb.relay_id] = _Seen(hb, now)

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

    def pick(self, *, now: float) -> RelayHeartbeat | None:
        """The least-loaded live relay that is not draining (ties broken by id), or None."""
        candidates = [hb for hb in self.live(now=now) if not hb.draining]
        if not candidates:
            return None
        return min(candidates, key=lambda hb: (load_of(hb), hb.allocations, hb.relay_id))


def ice_servers_for(
    hb: RelayHeartbeat | None, *, username: str, credential: str, stun_urls: list[str],
    host: str | None = None,
) -> list[dict[str, object]]:
    """RTCIceServer entries for a relay (STUN + TURN UDP/TCP/TLS), or STUN-only without one.

    `host` replaces the relay's announced address (see `services.common.publicurl.relay_host`).
    """
    if hb is None:
        return [{"urls": list(stun_urls)}] if stun_urls else []
    address = host or hb.public_host
    host = f"[{address}]" if ":" in address else address
    stun: list[str] = []
    turn: list[str] = []
    if hb.udp_port:
        stun.append(f"stun:{host}:{hb.udp_port}")
        turn.append(f"turn:{host}:{hb.udp_port}?transport=udp")
    if hb.tcp_port:
        turn.append(f"turn:{host}:{hb.tcp_port}?transport=tcp")
    if hb.tls_port:
        turn.append(f"turns:{host}:{hb.tls_port}?transport=tcp")
    servers: list[dict[str, object]] = []
    if stun:
        servers.append({"urls": stun})
    servers.append({"urls": turn, "username": username, "credential": credential})
    return servers
