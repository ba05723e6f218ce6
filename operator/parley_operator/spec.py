"""The RelayPool and SfuPool specs as pydantic models (the CRDs' schemas, mirrored for the
pure planner)."""

from __future__ import annotations

import math
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


RELAY_HTTP_PORT: Final[int] = 9641  # a relay's /healthz, /readyz, /metrics
# the relay's own ceiling (services/relay/settings.py MAX_WORKER_PORTS): a heartbeat carries
# at most this many worker ports
MAX_WORKER_PORTS: Final[int] = 64
# a pool's drain bound (`drain.maxSeconds`); each pool kind gives its own default
DrainSeconds = Annotated[float, Field(ge=0, alias="maxSeconds")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Replicas(_Spec):
    min: int = Field(default=1, ge=0, le=1000)
    max: int = Field(default=10, ge=1, le=1000)
    desired: int | None = Field(
        default=None, ge=0, le=1000,
        description="Set through the scale subresource (HPA/KEDA); overrides the load rule.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Replicas:
        if self.min > self.max:
            raise ValueError(f"replicas.min ({self.min}) is above replicas.max ({self.max})")
        return self


class _ScaleDown(_Spec):
    """The scale-down pacing of `spec.scaling`, the same for both pool kinds."""

    scale_down_stabilization_seconds: float = Field(
        default=300, ge=0, alias="scaleDownStabilizationSeconds")
    max_scale_down_per_minute: int = Field(default=1, ge=1, alias="maxScaleDownPerMinute")


class Scaling(_ScaleDown):
    target_allocations_per_relay: int = Field(default=200, ge=1, alias="targetAllocationsPerRelay")


class Drain(_Spec):
    max_seconds: DrainSeconds = 3600


class Exposure(_Spec):
    mode: Literal["LoadBalancer", "NodePort", "HostNetwork"] = "LoadBalancer"


class Ports(_Spec):
    listen: int = Field(default=3478, ge=1, le=65535)
    tls: int | None = Field(default=None, ge=1, le=65535)
    relay_min: int = Field(default=49152, ge=1024, le=65535, alias="relayMin")
    relay_max: int = Field(default=49999, ge=1024, le=65535, alias="relayMax")
    worker_base: int | None = Field(
        default=None, ge=1, le=65535, alias="workerBase",
        description="Worker k of a multi-worker relay also listens (UDP and TCP) on "
        "workerBase + k, so rooms can send every member of a room to one worker; unset = off.",
    )


class SecretRotation(_Spec):
    period_hours: float = Field(default=24, gt=0, alias="periodHours")


class Probe(_Spec):
    interval_seconds: float = Field(default=60, ge=5, alias="intervalSeconds")
    failure_threshold: int = Field(default=3, ge=1, alias="failureThreshold")


class _PoolSpecBase(_Spec):
    """The fields every pool kind's spec has (RelayPool, SfuPool) with the same type.
    Base fields are validated before a subclass's: a spec with several bad fields names
    one of these (or, in `scaling`, a `_ScaleDown` field) as its first error."""

    replicas: Replicas = Field(default_factory=Replicas)
    image: str = "ghcr.io/parley/parley:latest"
    resources: dict[str, dict[str, str]] = Field(default_factory=dict)


class PoolSpec(_PoolSpecBase):
    """`RelayPool.spec` (parley.dev/v1alpha1)."""

    scaling: Scaling = Field(default_factory=Scaling)
    drain: Drain = Field(default_factory=Drain)
    exposure: Exposure = Field(default_factory=Exposure)
    ports: Ports = Field(default_factory=Ports)
    allow_peers: list[str] = Field(default_factory=list, alias="allowPeers")
    secret_rotation: SecretRotation = Field(default_factory=SecretRotation, alias="secretRotation")
    probe: Probe = Field(default_factory=Probe)

    def relay_workers(self) -> int:
        """Worker processes of each relay: the whole cores of the CPU limit, at least 1."""
        cpu = str(self.resources.get("limits", {}).get("cpu", "") or "")
        try:
            cores = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
        except ValueError:
            return 1
        if not math.isfinite(cores):
            return 1
        return max(1, math.floor(cores))

    def worker_ports(self) -> list[int]:
        """The per-worker listening ports each relay gets (worker k: `ports.workerBase` + k),
        or [] when `workerBase` is unset or the relays run one worker (one worker holds
        every allocation already; docs/relay.md "Where allocations land")."""
        base, workers = self.ports.worker_base, self.relay_workers()
        if base is None or workers < 2:
            return []
        return list(range(base, base + workers))

    @model_validator(mode="after")
    def _worker_ports_fit(self) -> PoolSpec:
        base = self.ports.worker_base
        if base is None:
            return self
        if self.exposure.mode == "NodePort":
            # a NodePort Service translates every port to one of its own, and the relay
            # announces its worker ports as bound (it refuses them with --public-port)
            raise ValueError(
                "ports.workerBase needs exposure.mode LoadBalancer or HostNetwork: a NodePort "
                "Service translates ports, and worker ports must reach the relay as announced")
        workers = self.relay_workers()
        if workers > MAX_WORKER_PORTS:
            raise ValueError(f"ports.workerBase allows at most {MAX_WORKER_PORTS} workers per "
                             f"relay, the CPU limit gives {workers}")
        last = base + workers - 1
        span = f"ports.workerBase {base}" + (f"-{last} ({workers} workers)" if last > base else "")
        if last > 65535:
            raise ValueError(f"{span} ends past 65535")
        p = self.ports
        if base <= p.relay_max and p.relay_min <= last:
            raise ValueError(f"{span} overlaps the relayed ports {p.relay_min}-{p.relay_max}")
        others = {"ports.listen": p.listen, "ports.tls": p.tls, "the HTTP port": RELAY_HTTP_PORT}
        for what, port in others.items():
            if port is not None and base <= port <= last:
                raise ValueError(f"{span} includes {what} {port}")
        return self


class SfuScaling(_ScaleDown):
    target_peers_per_sfu: int = Field(default=100, ge=1, alias="targetPeersPerSfu")


class SfuDrain(Drain):
    max_seconds: DrainSeconds = 600


class SfuExposure(_Spec):
    # no HostNetwork: SFU pods stay within the restricted Pod Security profile
    mode: Literal["LoadBalancer", "NodePort"] = "LoadBalancer"


class SfuPorts(_Spec):
    listen: int = Field(default=7882, ge=1024, le=65535)


class SfuPoolSpec(_PoolSpecBase):
    """`SfuPool.spec` (parley.dev/v1alpha1): SFU processes, one UDP port each."""

    scaling: SfuScaling = Field(default_factory=SfuScaling)
    drain: SfuDrain = Field(default_factory=SfuDrain)
    exposure: SfuExposure = Field(default_factory=SfuExposure)
    ports: SfuPorts = Field(default_factory=SfuPorts)
    max_peers: int = Field(default=200, ge=1, le=100000, alias="maxPeers")

    def plan_spec(self) -> PoolSpec:
        """The same rules as a RelayPool's for the planner: peers stand for allocations
        (no probes, so the probe fields keep their defaults and never trigger)."""
        s = self.scaling
        return PoolSpec.model_validate({
            "replicas": self.replicas.model_dump(by_alias=True, exclude_none=True),
            "scaling": {"targetAllocationsPerRelay": s.target_peers_per_sfu,
                        "scaleDownStabilizationSeconds": s.scale_down_stabilization_seconds,
                        "maxScaleDownPerMinute": s.max_scale_down_per_minute},
            "drain": {"maxSeconds": self.drain.max_seconds},
            "image": self.image, "resources": self.resources,
        })
