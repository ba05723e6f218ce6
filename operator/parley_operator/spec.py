"""The RelayPool and SfuPool specs as pydantic models (the CRDs' schemas, mirrored for the
pure planner)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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


class Scaling(_Spec):
    target_allocations_per_relay: int = Field(default=200, ge=1, alias="targetAllocationsPerRelay")
    scale_down_stabilization_seconds: float = Field(
        default=300, ge=0, alias="scaleDownStabilizationSeconds")
    max_scale_down_per_minute: int = Field(default=1, ge=1, alias="maxScaleDownPerMinute")


class Drain(_Spec):
    max_seconds: float = Field(default=3600, ge=0, alias="maxSeconds")


class Exposure(_Spec):
    mode: Literal["LoadBalancer", "NodePort", "HostNetwork"] = "LoadBalancer"


class Ports(_Spec):
    listen: int = Field(default=3478, ge=1, le=65535)
    tls: int | None = Field(default=None, ge=1, le=65535)
    relay_min: int = Field(default=49152, ge=1024, le=65535, alias="relayMin")
    relay_max: int = Field(default=49999, ge=1024, le=65535, alias="relayMax")


class SecretRotation(_Spec):
    period_hours: float = Field(default=24, gt=0, alias="periodHours")


class Probe(_Spec):
    interval_seconds: float = Field(default=60, ge=5, alias="intervalSeconds")
    failure_threshold: int = Field(default=3, ge=1, alias="failureThreshold")


class PoolSpec(_Spec):
    """`RelayPool.spec` (parley.dev/v1alpha1)."""

    replicas: Replicas = Field(default_factory=Replicas)
    scaling: Scaling = Field(default_factory=Scaling)
    drain: Drain = Field(default_factory=Drain)
    exposure: Exposure = Field(default_factory=Exposure)
    ports: Ports = Field(default_factory=Ports)
    image: str = "ghcr.io/parley/parley:latest"
    resources: dict[str, dict[str, str]] = Field(default_factory=dict)
    allow_peers: list[str] = Field(default_factory=list, alias="allowPeers")
    secret_rotation: SecretRotation = Field(default_factory=SecretRotation, alias="secretRotation")
    probe: Probe = Field(default_factory=Probe)


class SfuScaling(_Spec):
    target_peers_per_sfu: int = Field(default=100, ge=1, alias="targetPeersPerSfu")
    scale_down_stabilization_seconds: float = Field(
        default=300, ge=0, alias="scaleDownStabilizationSeconds")
    max_scale_down_per_minute: int = Field(default=1, ge=1, alias="maxScaleDownPerMinute")


class SfuDrain(_Spec):
    max_seconds: float = Field(default=600, ge=0, alias="maxSeconds")


class SfuExposure(_Spec):
    # no HostNetwork: SFU pods stay within the restricted Pod Security profile
    mode: Literal["LoadBalancer", "NodePort"] = "LoadBalancer"


class SfuPorts(_Spec):
    listen: int = Field(default=7882, ge=1024, le=65535)


class SfuPoolSpec(_Spec):
    """`SfuPool.spec` (parley.dev/v1alpha1): SFU processes, one UDP port each."""

    replicas: Replicas = Field(default_factory=Replicas)
    scaling: SfuScaling = Field(default_factory=SfuScaling)
    drain: SfuDrain = Field(default_factory=SfuDrain)
    exposure: SfuExposure = Field(default_factory=SfuExposure)
    ports: SfuPorts = Field(default_factory=SfuPorts)
    image: str = "ghcr.io/parley/parley:latest"
    resources: dict[str, dict[str, str]] = Field(default_factory=dict)
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
