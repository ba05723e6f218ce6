"""What the operator sees: the pool's Pods and Services plus the members' heartbeats.

A member is a relay (RelayPool) or an SFU (SfuPool); `RelayState` stands for either.
`HeartbeatCache` is fed by NATS subscriptions (`subscribe_heartbeats`: relays' and SFUs')
and keeps each member's last heartbeat with the (monotonic) time it arrived; a member whose
heartbeat is older than the cache's TTL counts as not ready. `collect_relays` and
`build_observed` are pure: Kubernetes objects + heartbeats + probe records in, `RelayState`s
and the planner's `Observed` out.
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
from parley_operator.spec import PoolSpec, SfuPoolSpec
from services.common.bus import Envelope, NatsBus
from services.common.messages import RelayHeartbeat, SfuHeartbeat
from services.common.subjects import RELAY_HEARTBEATS, SFU_HEARTBEATS

__all__ = [
    "Heartbeat", "HeartbeatCache", "Phase", "ProbeRecord", "RelayState", "build_observed",
    "collect_relays", "heartbeat_id", "heartbeat_load", "parse_time", "subscribe_heartbeats",
]

log = logging.getLogger("parley.operator.observe")

DEFAULT_HEARTBEAT_TTL: Final[float] = 10.0
Phase = Literal["Pending", "Active", "Draining", "Drained"]
Heartbeat = RelayHeartbeat | SfuHeartbeat


def heartbeat_id(heartbeat: Heartbeat) -> str:
    """The member id a heartbeat comes from."""
    return heartbeat.relay_id if isinstance(heartbeat, RelayHeartbeat) else heartbeat.sfu_id


def heartbeat_load(heartbeat: Heartbeat) -> int:
    """A heartbeat's load: a relay's allocations, an SFU's peers (PeerConnections)."""
    return heartbeat.allocations if isinstance(heartbeat, RelayHeartbeat) else heartbeat.peers


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from the API (or None)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


class HeartbeatCache:
    """The last heartbeat of every relay and SFU and when it arrived (monotonic seconds).

    Ids are Pod names, unique in a namespace, so relays and SFUs share one cache."""

    def __init__(self, *, ttl: float = DEFAULT_HEARTBEAT_TTL) -> None:
        self.ttl = ttl
        self._seen: dict[str, tuple[Heartbeat, float]] = {}

    def record(self, heartbeat: Heartbeat, *, now: float) -> None:
        """Remember a heartbeat received at `now`."""
        self._seen[heartbeat_id(heartbeat)] = (heartbeat, now)

    def latest(self, relay_id: str) -> Heartbeat | None:
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


async def subscribe_heartbeats(bus: NatsBus, cache: HeartbeatCache, clock: Any) -> list[Any]:
    """Feed `cache` from every relay's and every SFU's heartbeat subject; returns the
    subscriptions."""

    async def on_relay(env: Envelope) -> None:
        try:
            cache.record(RelayHeartbeat.model_validate_json(env.data), now=clock())
        except ValidationError:
            log.warning("ignored a malformed relay heartbeat")

    async def on_sfu(env: Envelope) -> None:
        try:
            cache.record(SfuHeartbeat.model_validate_json(env.data), now=clock())
        except ValidationError:
            log.warning("ignored a malformed SFU heartbeat")

    return [await bus.subscribe(RELAY_HEARTBEATS, on_relay),
            await bus.subscribe(SFU_HEARTBEATS, on_sfu)]


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
    """One relay (or SFU) as the operator knows it this round."""

    id: str
    pod: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    heartbeat: Heartbeat | None = None
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
        """The load: a relay's allocations, an SFU's peers."""
        if self.terminated or self.heartbeat is None:
            return 0
        return heartbeat_load(self.heartbeat)

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
    spec: PoolSpec | SfuPoolSpec, *, pods: list[dict[str, Any]], services: list[dict[str, Any]],
    cache: HeartbeatCache, probes: Mapping[str, ProbeRecord], monotonic_now: float,
    member_label: str = LABEL_RELAY,
) -> list[RelayState]:
    """Join pods, Services, heartbeats and probe records into one `RelayState` per relay.

    A relay exists while its Pod or its Service does (the Service comes first when the
    relay waits for a public address). Pods being deleted are left out: they are gone as
    far as planning is concerned. A pod that has terminated counts as drained.
    """
    states: dict[str, RelayState] = {}
    for svc in services:
        rid = (_meta(svc).get("labels") or {}).get(member_label)
        if rid and not _meta(svc).get("deletionTimestamp"):
            states.setdefault(rid, RelayState(id=rid)).service = svc
    for pod in pods:
        rid = (_meta(pod).get("labels") or {}).get(member_label)
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
        hb = state.heartbeat
        if state.public_address is None and isinstance(hb, RelayHeartbeat) and state.fresh:
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
