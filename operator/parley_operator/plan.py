"""The heart of the operator: `plan(spec, observed, now) -> Plan`, a pure function.

Rules (RelayPool semantics):
- desired = ceil(allocations on non-draining relays / targetAllocationsPerRelay), clamped to
  [min, max]; `replicas.desired` (set through the scale subresource) replaces the load rule.
- Scale up at once: create relays until the non-draining, healthy count reaches desired.
- Scale down slowly: only when no scaling happened within the stabilization window, at most
  `maxScaleDownPerMinute` relays a minute, never below min, always the least-loaded relay,
  and by draining it first (the relay stops taking allocations and reports Draining).
- A draining relay is deleted when it has no allocations or its drain time is up.
- A relay whose probe failed `failureThreshold` times in a row is replaced: drained (so its
  calls may finish) and a new one created at once.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from parley_operator.pool import RELAY, PoolKind
from parley_operator.spec import PoolSpec

__all__ = ["Action", "Observed", "ObservedRelay", "Plan", "PoolSpec", "plan"]


class ObservedRelay(BaseModel):
    """One relay as seen: its pod plus its last heartbeat."""

    model_config = ConfigDict(extra="ignore")
    id: str
    allocations: int = Field(default=0, ge=0)
    ready: bool = True
    draining: bool = False
    draining_since: datetime | None = None
    probe_failures: int = Field(default=0, ge=0)


class Observed(BaseModel):
    """What the operator saw this round."""

    model_config = ConfigDict(extra="ignore")
    relays: list[ObservedRelay] = Field(default_factory=list)
    last_scale_down: datetime | None = None
    last_scale_up: datetime | None = None


class Action(BaseModel):
    """One thing to do: create a relay, drain one, or delete one."""

    action: Literal["create", "drain", "delete"]
    relay: str | None = None
    reason: str


class Plan(BaseModel):
    desired_replicas: int
    actions: list[Action] = Field(default_factory=list)


def _desired(spec: PoolSpec, load: int) -> int:
    r = spec.replicas
    if r.desired is not None:
        want = r.desired
    else:
        want = math.ceil(load / spec.scaling.target_allocations_per_relay)
    return max(r.min, min(r.max, want))


def _age(since: datetime | None, now: datetime) -> float:
    return math.inf if since is None else (now - since).total_seconds()


def plan(spec: PoolSpec, observed: Observed, now: datetime, *, kind: PoolKind = RELAY) -> Plan:
    """Decide what to create, drain and delete. Pure: no I/O, no clock but `now`.

    An SfuPool is planned with `SfuPoolSpec.plan_spec()`: its peers are the load
    (`ObservedRelay.allocations`); `kind` only words the reasons.
    """
    noun, load_word = kind.noun, kind.load
    actions: list[Action] = []
    draining = [r for r in observed.relays if r.draining]
    active = [r for r in observed.relays if not r.draining]

    # 1. finish drains: empty or out of time
    for r in sorted(draining, key=lambda r: r.id):
        if r.allocations == 0:
            actions.append(Action(action="delete", relay=r.id,
                                  reason=f"drained: no {load_word}"))
        elif _age(r.draining_since, now) >= spec.drain.max_seconds:
            actions.append(Action(action="delete", relay=r.id,
                                  reason=f"drain deadline ({spec.drain.max_seconds:g}s) passed"))

    # 2. replace relays that keep failing their probe
    failing = [r for r in active if r.probe_failures >= spec.probe.failure_threshold]
    for r in sorted(failing, key=lambda r: r.id):
        actions.append(Action(action="drain", relay=r.id,
                              reason=f"probe failed {r.probe_failures} times: replacing"))
    healthy = [r for r in active if r not in failing]

    load = sum(r.allocations for r in active)
    desired = _desired(spec, load)

    # 3. scale up at once
    if len(healthy) < desired:
        for _ in range(desired - len(healthy)):
            actions.append(Action(action="create", reason=(
                f"{len(healthy)} healthy {noun}s, {desired} wanted "
                f"({load} {load_word}, target {spec.scaling.target_allocations_per_relay})")))
        return Plan(desired_replicas=desired, actions=actions)

    # 4. scale down slowly: stabilization window, rate cap, least loaded first
    surplus = len(healthy) - desired
    window = spec.scaling.scale_down_stabilization_seconds
    recent = min(_age(observed.last_scale_down, now), _age(observed.last_scale_up, now))
    if surplus > 0 and recent >= window:
        per_minute = spec.scaling.max_scale_down_per_minute
        if _age(observed.last_scale_down, now) < 60:
            per_minute = 0  # this minute's quota is spent
        victims = sorted(healthy, key=lambda r: (r.ready, r.allocations, r.id))
        for r in victims[: min(surplus, per_minute)]:
            actions.append(Action(action="drain", relay=r.id, reason=(
                f"{len(healthy)} {noun}s for {desired} wanted; least loaded "
                f"({r.allocations} {load_word})")))
    return Plan(desired_replicas=desired, actions=actions)
