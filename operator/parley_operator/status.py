"""A pool's status (RelayPool or SfuPool), computed purely from its members, the plan and
the previous status.

Conditions follow the Kubernetes convention (type, status, reason, message,
lastTransitionTime, observedGeneration); `lastTransitionTime` only moves when a
condition's status changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from parley_operator.observe import RelayState
from parley_operator.plan import Plan
from parley_operator.pool import RELAY, PoolKind
from parley_operator.spec import PoolSpec

__all__ = ["build_status", "compute_conditions", "invalid_spec_status", "rfc3339"]


def rfc3339(at: datetime) -> str:
    """A timestamp as the API writes them (UTC, seconds)."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _cond(type_: str, ok: bool | None, reason: str, message: str) -> dict[str, Any]:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    return {"type": type_, "status": status, "reason": reason, "message": message}


def compute_conditions(
    spec: PoolSpec, relays: Sequence[RelayState], plan: Plan, *,
    previous: Sequence[Mapping[str, Any]], generation: int | None, now: datetime,
    kind: PoolKind = RELAY,
) -> list[dict[str, Any]]:
    """Available, Progressing, Degraded and (for probed kinds) ProbeHealthy for this round.

    Args:
        spec: the pool's spec (probe threshold, replica bounds).
        relays: every relay of the pool as observed.
        plan: what the planner decided this round.
        previous: the conditions currently in the status (for lastTransitionTime).
        generation: the spec generation observed.
        now: the time of this round.
        kind: the pool's kind (words of reasons and messages; whether it is probed).

    Returns:
        The conditions, in a fixed order (an SfuPool has no ProbeHealthy).
    """
    n, stem = kind.noun, kind.stem
    active = [r for r in relays if not r.draining]
    ready = [r for r in active if r.ready]
    draining = [r for r in relays if r.draining]
    want = plan.desired_replicas
    threshold = spec.probe.failure_threshold
    failing = [r for r in relays if r.probe and r.probe.consecutive_failures >= threshold]

    if want == 0 and not active:
        available = _cond("Available", True, "ScaledToZero", f"no {n} is wanted")
    elif ready:
        available = _cond("Available", True, f"{stem}sReady",
                          f"{len(ready)} of {want} {n}s ready")
    else:
        available = _cond("Available", False, f"NoReady{stem}",
                          f"none of {len(active)} {n}s is ready; {want} wanted")

    creates = sum(1 for a in plan.actions if a.action == "create")
    drains = sum(1 for a in plan.actions if a.action == "drain")
    pending = [r for r in active if r.phase == "Pending"]
    if creates:
        progressing = _cond("Progressing", True, "ScalingUp", f"creating {creates} {n}s")
    elif drains:
        progressing = _cond("Progressing", True, "ScalingDown", f"draining {drains} {n}s")
    elif pending:
        progressing = _cond("Progressing", True, f"{stem}sStarting",
                            f"{len(pending)} {n}s not ready yet")
    elif draining:
        progressing = _cond("Progressing", True, "Draining",
                            f"{len(draining)} {n}s draining")
    else:
        progressing = _cond("Progressing", False, "Stable", f"{len(ready)} {n}s, as wanted")

    if failing:
        names = ", ".join(r.id for r in failing)
        degraded = _cond("Degraded", True, "ProbeFailures",
                         f"probe failed {threshold}+ times in a row: {names}")
    elif len(ready) < min(spec.replicas.min, want):
        degraded = _cond("Degraded", True, "BelowMinimum",
                         f"{len(ready)} ready {n}s, minimum {spec.replicas.min}")
    else:
        degraded = _cond("Degraded", False, "AsExpected", f"no {n} is failing")

    probed = [r for r in active if r.probe is not None]
    bad = [r for r in probed if not r.probe or not r.probe.ok]
    if not probed:
        probe_ok = _cond("ProbeHealthy", None, "NotProbed", "no relay probed yet")
    elif bad:
        probe_ok = _cond("ProbeHealthy", False, "ProbeFailed",
                         "last probe failed: " + ", ".join(r.id for r in bad))
    else:
        probe_ok = _cond("ProbeHealthy", True, "ProbeSucceeded",
                         f"last probe of {len(probed)} relays succeeded")

    before = {c.get("type"): c for c in previous}
    out = []
    for cond in (available, progressing, degraded, *([probe_ok] if kind.probed else [])):
        old = before.get(cond["type"])
        same = old is not None and old.get("status") == cond["status"]
        cond["lastTransitionTime"] = (
            str(old.get("lastTransitionTime")) if same and old and old.get("lastTransitionTime")
            else rfc3339(now))
        if generation is not None:
            cond["observedGeneration"] = generation
        out.append(cond)
    return out


def build_status(
    spec: PoolSpec, relays: Sequence[RelayState], plan: Plan, *,
    previous: Mapping[str, Any], generation: int | None, selector: str, now: datetime,
    scaled_up: bool, scaled_down: bool, secret_rotated_at: str | None,
    kind: PoolKind = RELAY,
) -> dict[str, Any]:
    """The whole `.status` to write after a round (the conditions included)."""
    active = [r for r in relays if not r.draining]
    status: dict[str, Any] = {
        "replicas": len(active),
        "readyReplicas": sum(1 for r in active if r.ready),
        "drainingReplicas": len(relays) - len(active),
        "desiredReplicas": plan.desired_replicas,
        kind.load: sum(r.allocations for r in relays),
        "selector": selector,
        "lastScaleUp": rfc3339(now) if scaled_up else previous.get("lastScaleUp"),
        "lastScaleDown": rfc3339(now) if scaled_down else previous.get("lastScaleDown"),
        kind.members_key: [_relay_entry(r, kind) for r in relays],
        "conditions": compute_conditions(
            spec, relays, plan, previous=previous.get("conditions") or [],
            generation=generation, now=now, kind=kind),
    }
    if kind.has_secret:
        status["secretRotatedAt"] = secret_rotated_at or previous.get("secretRotatedAt")
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def _relay_entry(r: RelayState, kind: PoolKind) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": r.id, "phase": r.phase, kind.load: r.allocations}
    if r.pod is not None:
        entry["pod"] = r.pod["metadata"]["name"]
    if r.public_address:
        entry["publicAddress"] = r.public_address
    if r.draining_since is not None:
        entry["drainingSince"] = rfc3339(r.draining_since)
    if r.probe is not None:
        entry["lastProbe"] = r.probe.to_status()
    return entry


def invalid_spec_status(
    message: str, *, previous: Mapping[str, Any], generation: int | None, now: datetime
) -> dict[str, Any]:
    """The status patch for a spec that does not validate: Degraded/InvalidSpec, nothing else
    changes (the relays keep running as they are)."""
    old: Mapping[str, Any] = next(
        (c for c in previous.get("conditions") or [] if c.get("type") == "Degraded"), {})
    cond = _cond("Degraded", True, "InvalidSpec", message)
    cond["lastTransitionTime"] = (str(old["lastTransitionTime"])
                                  if old.get("status") == "True" and old.get("lastTransitionTime")
                                  else rfc3339(now))
    if generation is not None:
        cond["observedGeneration"] = generation
    others = [c for c in previous.get("conditions") or [] if c.get("type") != "Degraded"]
    return {"conditions": [*others, cond]}
