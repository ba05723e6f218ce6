"""What the operator sees: the pool's relay Pods and Services plus the relays' heartbeats.

`HeartbeatCache` is fed by a NATS subscription (`subscribe_heartbeats`) and keeps each
relay's last heartbeat with the (monotonic) time it arrived; a relay whose heartbeat is
older than the cache's TTL counts as not ready. `collect_relays` and `build_observed` are
pure: Kubernetes objects + heartbeats + probe records in, `RelayState`s and the planner's
`Observed` out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import ValidationError

from parley_operator.manifests import ANNOTATION_DRAINING_SINCE, LABEL_RELAY
from parley_operator.plan import Observed, ObservedRelay
from parley_operator.spec import PoolSpec
from services.common.bus import Envelope, NatsBus
from services.common.messages import RelayHeartbeat
from services.common.subjects import RELAY_HEARTBEATS

__all__ = [
    "HeartbeatCache", "Phase", "ProbeRecord", "RelayState", "build_observed",
    "collect_relays", "parse_time", "subscribe_heartbeats",
]

log = logging.getLogger("parley.operator.observe")

DEFAULT_HEARTBEAT_TTL: Final[float] = 10.0
Phase = Literal["Pending", "Active", "Draining", "Drained"]


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from the API (or None)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


class HeartbeatCache:
    """The last heartbeat of every relay and when it arrived (monotonic seconds)."""

    def __init__(self, *, ttl: float = DEFAULT_HEARTBEAT_TTL) -> None:
        self.ttl = ttl
        self._seen: dict[str, tuple[RelayHeartbeat, float]] = {}

    def record(self, heartbeat: RelayHeartbeat, *, now: float) -> None:
        """Remember a heartbeat received at `now`."""
        self._seen[heartbeat.relay_id] = (heartbeat, now)

    def latest(self, relay_id: str) -> RelayHeartbeat | None:
        """The last heartbeat of `relay_id`, however old."""
        entry = self._seen.get(relay_id)
        return entry[0] if entry else None

    def fresh(self, relay_id: str, *, now: float) -> bool:
        """Whether `relay_id` heartbeated within the TTL."""
        entry = self._seen.get(relay_id)
        return entry is not None and now - entry[1] <= self.ttl

    def forget(self, relay_id: str) -> None:
        """Drop a relay that no longer exists."""
        self._seen.pop(relay_id, None)


async def subscribe_heartbeats(bus: NatsBus, cache: HeartbeatCache, clock: Any) -> Any:
    """Feed `cache` from every relay's heartbeat subject; returns the subscription."""

    async def on_heartbeat(env: Envelope) -> None:
        try:
            cache.record(RelayHeartbeat.model_validate_json(env.data), now=clock())
        except ValidationError:
            log.warning("ignored a malformed relay heartbeat")

    return await bus.subscribe(RELAY_HEARTBEATS, on_heartbeat)


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    """The last WebRTC probe of one relay."""

    time: datetime
    ok: bool
    message: str = ""
    consecutive_failures: int = 0

    def to_status(self) -> dict[str, Any]:
        return {
            "time": self.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "result": "Succeeded" if self.ok else "Failed",
            "message": self.message[:512],
            "consecutiveFailures": self.consecutive_failures,
        }

    @classmethod
    def from_status(cls, entry: Mapping[str, Any]) -> ProbeRecord | None:
        at = parse_time(entry.get("time"))
        if at is None:
            return None
        return cls(time=at, ok=entry.get("result") == "Succeeded",
                   message=str(entry.get("message") or ""),
                   consecutive_failures=int(entry.get("consecutiveFailures") or 0))


@dataclass(slots=True)
class RelayState:
    """One relay as the operator knows it this round."""

    id: str
    pod: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    heartbeat: RelayHeartbeat | None = None
    fresh: bool = False
    draining_since: datetime | None = None
    terminated: bool = False
    probe: ProbeRecord | None = None
    public_address: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def draining(self) -> bool:
        return self.draining_since is not None or self.terminated or bool(
            self.heartbeat and self.fresh and self.heartbeat.draining)

    @property
    def allocations(self) -> int:
        if self.terminated or self.heartbeat is None:
            return 0
        return self.heartbeat.allocations

    @property
    def ready(self) -> bool:
        return self.fresh and not self.draining and not self.terminated

    @property
    def phase(self) -> Phase:
        if self.draining:
            return "Drained" if self.allocations == 0 else "Draining"
        return "Active" if self.ready else "Pending"


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def _public_address(
    mode: str, listen: int, pod: Mapping[str, Any] | None, svc: Mapping[str, Any] | None
) -> str | None:
    if mode == "LoadBalancer":
        ingress = (((svc or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress")
        host = (ingress[0].get("ip") or ingress[0].get("hostname")) if ingress else None
        return f"{host}:{listen}" if host else None
    host_ip = ((pod or {}).get("status") or {}).get("hostIP")
    if not host_ip:
        return None
    if mode == "NodePort":
        port = node_port(svc)
        return f"{host_ip}:{port}" if port else None
    return f"{host_ip}:{listen}"


def node_port(svc: Mapping[str, Any] | None, protocol: str = "UDP") -> int | None:
    """A node port of a relay's NodePort Service (TURN's UDP one by default), once the API
    server assigned it. UDP and TCP get node ports of their own."""
    for port in ((svc or {}).get("spec") or {}).get("ports") or []:
        if port.get("protocol") == protocol and port.get("nodePort") and (
                protocol == "UDP" or port.get("name") != "turn-tls"):
            return int(port["nodePort"])
    return None


def lb_host(svc: Mapping[str, Any] | None) -> str | None:
    """The LoadBalancer ingress address of a relay's Service, once the cloud assigned it."""
    ingress = (((svc or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress")
    return (ingress[0].get("ip") or ingress[0].get("hostname")) if ingress else None


def collect_relays(
    spec: PoolSpec, *, pods: list[dict[str, Any]], services: list[dict[str, Any]],
    cache: HeartbeatCache, probes: Mapping[str, ProbeRecord], monotonic_now: float,
) -> list[RelayState]:
    """Join pods, Services, heartbeats and probe records into one `RelayState` per relay.

    A relay exists while its Pod or its Service does (the Service comes first when the
    relay waits for a public address). Pods being deleted are left out: they are gone as
    far as planning is concerned. A pod that has terminated counts as drained.
    """
    states: dict[str, RelayState] = {}
    for svc in services:
        rid = (_meta(svc).get("labels") or {}).get(LABEL_RELAY)
        if rid and not _meta(svc).get("deletionTimestamp"):
            states.setdefault(rid, RelayState(id=rid)).service = svc
    for pod in pods:
        rid = (_meta(pod).get("labels") or {}).get(LABEL_RELAY)
        if not rid:
            continue
        if _meta(pod).get("deletionTimestamp"):
            states.pop(rid, None)
            continue
        state = states.setdefault(rid, RelayState(id=rid))
        state.pod = pod
        state.draining_since = parse_time(
            (_meta(pod).get("annotations") or {}).get(ANNOTATION_DRAINING_SINCE))
        state.terminated = ((pod.get("status") or {}).get("phase")) in ("Failed", "Succeeded")
    for state in states.values():
        state.heartbeat = cache.latest(state.id)
        state.fresh = cache.fresh(state.id, now=monotonic_now)
        state.probe = probes.get(state.id)
        state.public_address = _public_address(
            spec.exposure.mode, spec.ports.listen, state.pod, state.service)
        if state.public_address is None and state.heartbeat is not None and state.fresh:
            hb = state.heartbeat
            state.public_address = f"{hb.public_host}:{hb.udp_port or spec.ports.listen}"
    return sorted(states.values(), key=lambda s: s.id)


def build_observed(
    relays: list[RelayState], *, status: Mapping[str, Any], now: datetime
) -> Observed:
    """The planner's input: relays plus the last scale times kept in the pool's status."""
    return Observed(
        relays=[
            ObservedRelay(
                id=r.id, allocations=r.allocations, ready=r.ready, draining=r.draining,
                draining_since=r.draining_since or (now if r.draining else None),
                probe_failures=r.probe.consecutive_failures if r.probe else 0,
            )
            for r in relays
        ],
        last_scale_up=parse_time(status.get("lastScaleUp")),
        last_scale_down=parse_time(status.get("lastScaleDown")),
    )
