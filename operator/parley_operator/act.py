"""Carrying out a plan: the operator's only writes to Kubernetes and to the members (NATS).

Creating a relay or an SFU makes its Service first (except with HostNetwork) and its Pod
once the public address is known; draining publishes `RelayControl(drain)` (an SFU:
`SfuControl(drain)`) and marks the pod;
deleting sets `pod-deletion-cost`, then deletes the Pod and its Service. The TURN Secret is
created here and rotated here (the old current becomes previous; relays are told to
reload, rooms reads the same Secret).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from parley_operator import manifests as m
from parley_operator.errors import Conflict
from parley_operator.observe import RelayState, lb_host, node_port, parse_time
from parley_operator.plan import Plan
from parley_operator.pool import SFU, PoolExtras, PoolRef
from parley_operator.runtime import Runtime
from parley_operator.sfu_manifests import build_sfu_pod_spec, build_sfu_service_spec
from parley_operator.spec import PoolSpec, SfuPoolSpec
from parley_operator.status import rfc3339
from services.common.messages import RelayControl, SfuControl
from services.common.subjects import relay_control, sfu_control

__all__ = ["Done", "SecretState", "carry_out", "ensure_secret", "start_waiting_relays"]

log = logging.getLogger("parley.operator.act")

# kubelet refreshes mounted Secrets within about a minute: keep asking for a reload a while
RELOAD_WINDOW: Final[timedelta] = timedelta(minutes=3)
ANNOTATION_ROTATE_DONE: Final[str] = "parley.dev/rotate-secret-done"


@dataclass(frozen=True, slots=True)
class SecretState:
    """The pool's TURN Secret after this round."""

    name: str
    current: str
    rotated_at: datetime | None
    rotated_now: bool


@dataclass(frozen=True, slots=True)
class Done:
    """What was carried out."""

    created: int = 0
    drained: int = 0
    deleted: int = 0


AnySpec = PoolSpec | SfuPoolSpec


async def _control(rt: Runtime, relay_id: str, request: RelayControl) -> None:
    await rt.bus.publish(relay_control(relay_id), request.model_dump_json().encode())


async def _drain_request(rt: Runtime, pool: PoolRef, member_id: str, deadline: float) -> None:
    """Ask a relay or an SFU to drain (no new allocations / rooms) within `deadline` s."""
    if pool.kind == SFU:
        request = SfuControl(action="drain", deadline_seconds=deadline)
        await rt.bus.publish(sfu_control(member_id), request.model_dump_json().encode())
    else:
        await _control(rt, member_id, RelayControl(action="drain", deadline_seconds=deadline))


async def ensure_secret(
    rt: Runtime, pool: PoolRef, spec: PoolSpec, extras: PoolExtras, body: dict[str, Any],
    relays: list[RelayState], now: datetime,
) -> SecretState:
    """Create the TURN Secret if missing; rotate it when the period is up or asked to.

    A rotation is asked for by setting the pool annotation `parley.dev/rotate-secret` to a
    new value (any string). After a rotation, and for a few minutes (until every kubelet
    has refreshed the mounted file), relays are told to reload their secrets.
    """
    name = m.secret_name(pool, extras)
    found = await rt.kube.get("Secret", name, namespace=pool.namespace)
    if found is None:
        value = m.new_secret_value()
        manifest = m.build_secret_spec(pool, name=name, current=value, previous="",
                                       rotated_at=rfc3339(now))
        with contextlib.suppress(Conflict):  # created meanwhile: use it next round
            await rt.kube.create(manifest)
        await rt.kube.event(body, reason="SecretCreated", message=f"TURN secret {name} created")
        return SecretState(name, value, now, rotated_now=False)
    current, _previous = m.secret_values(found)
    annotations = (found.get("metadata") or {}).get("annotations") or {}
    rotated_at = parse_time(annotations.get(m.ANNOTATION_ROTATED_AT))
    asked = ((body.get("metadata") or {}).get("annotations") or {}).get(m.ANNOTATION_ROTATE)
    period = timedelta(hours=spec.secret_rotation.period_hours)
    due = rotated_at is None or now - rotated_at >= period
    requested = bool(asked) and asked != annotations.get(ANNOTATION_ROTATE_DONE)
    if not current or due or requested:
        new = m.new_secret_value()
        fresh = m.build_secret_spec(pool, name=name, current=new, previous=current,
                                    rotated_at=rfc3339(now))
        if asked:
            fresh["metadata"]["annotations"][ANNOTATION_ROTATE_DONE] = asked
        await rt.kube.patch("Secret", name, {"data": fresh["data"], "metadata": {
            "annotations": fresh["metadata"]["annotations"]}}, namespace=pool.namespace)
        why = ("asked by annotation" if requested
               else f"every {spec.secret_rotation.period_hours:g}h")
        await rt.kube.event(body, reason="SecretRotated",
                            message=f"TURN secret {name} rotated ({why})")
        await _reload(rt, relays)
        return SecretState(name, new, now, rotated_now=True)
    if rotated_at is not None and now - rotated_at < RELOAD_WINDOW:
        await _reload(rt, relays)
    return SecretState(name, current, rotated_at, rotated_now=False)


async def _reload(rt: Runtime, relays: list[RelayState]) -> None:
    for r in relays:
        if r.pod is not None:
            await _control(rt, r.id, RelayControl(action="reload-secrets"))


def _new_relay_id(pool: PoolRef) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return m.relay_name_prefix(pool) + "".join(secrets.choice(alphabet) for _ in range(5))


async def _create_pod(
    rt: Runtime, pool: PoolRef, spec: AnySpec, extras: PoolExtras, relay_id: str,
    secret: str, service: dict[str, Any] | None,
) -> bool:
    mode = spec.exposure.mode
    host = lb_host(service) if mode == "LoadBalancer" else None
    port = node_port(service) if mode == "NodePort" else None
    tcp_port = node_port(service, "TCP") if mode == "NodePort" else None
    if (mode == "LoadBalancer" and host is None) or (mode == "NodePort" and port is None):
        return False  # waits for its public address
    if isinstance(spec, SfuPoolSpec):
        pod = build_sfu_pod_spec(pool, spec, extras, sfu_id=relay_id,
                                 nats_url=rt.sfu_nats_url or rt.relay_nats_url,
                                 public_host=host, public_port=port, tracing=rt.tracing)
    else:
        pod = m.build_relay_pod_spec(
            pool, spec, extras, relay_id=relay_id, secret=secret, nats_url=rt.relay_nats_url,
            public_host=host, public_port=port, public_tcp_port=tcp_port, tracing=rt.tracing)
    with contextlib.suppress(Conflict):
        await rt.kube.create(pod)
    return True


async def start_waiting_relays(
    rt: Runtime, pool: PoolRef, spec: AnySpec, extras: PoolExtras, relays: list[RelayState],
    secret: str,
) -> int:
    """Create the Pod of every member whose Service now has its public address."""
    started = 0
    for r in relays:
        if r.pod is None and r.service is not None and not r.draining:
            started += await _create_pod(rt, pool, spec, extras, r.id, secret, r.service)
    return started


async def _create(rt: Runtime, pool: PoolRef, spec: AnySpec, extras: PoolExtras,
                  secret: str) -> str:
    relay_id = _new_relay_id(pool)
    service = (build_sfu_service_spec(pool, spec, extras, sfu_id=relay_id)
               if isinstance(spec, SfuPoolSpec)
               else m.build_relay_service_spec(pool, spec, extras, relay_id=relay_id))
    created = await rt.kube.create(service) if service is not None else None
    await _create_pod(rt, pool, spec, extras, relay_id, secret, created)
    return relay_id


async def _drain(rt: Runtime, pool: PoolRef, spec: AnySpec, r: RelayState,
                 now: datetime) -> None:
    await _drain_request(rt, pool, r.id, spec.drain.max_seconds)
    if r.pod is not None:
        await rt.kube.patch("Pod", r.id, {"metadata": {"annotations": {
            m.ANNOTATION_DRAINING_SINCE: rfc3339(now)}}}, namespace=pool.namespace)
    else:  # never started: nothing to drain
        await _delete(rt, pool, r)


async def _delete(rt: Runtime, pool: PoolRef, r: RelayState) -> None:
    if r.pod is not None:
        await rt.kube.patch("Pod", r.id, {"metadata": {"annotations": {
            m.ANNOTATION_DELETION_COST: "-1000"}}}, namespace=pool.namespace)
        await rt.kube.delete("Pod", r.id, namespace=pool.namespace)
    if r.service is not None:
        await rt.kube.delete("Service", r.id, namespace=pool.namespace)
    rt.cache.forget(r.id)
    rt.probes(pool).pop(r.id, None)


async def carry_out(
    rt: Runtime, pool: PoolRef, spec: AnySpec, extras: PoolExtras, plan: Plan,
    relays: list[RelayState], secret: str, body: dict[str, Any], now: datetime,
) -> Done:
    """Do what `plan` says, in its order; emit one event per action (reasons
    `RelayCreated`, `RelayDraining`, `RelayDeleted`; `Sfu...` for an SfuPool)."""
    stem = pool.kind.stem
    by_id = {r.id: r for r in relays}
    created = drained = deleted = 0
    for action in plan.actions:
        target = by_id.get(action.relay or "")
        if action.action == "create":
            rid = await _create(rt, pool, spec, extras, secret)
            created += 1
            await rt.kube.event(body, reason=f"{stem}Created", message=f"{rid}: {action.reason}")
        elif target is None:
            continue  # vanished since it was observed
        elif action.action == "drain":
            await _drain(rt, pool, spec, target, now)
            drained += 1
            await rt.kube.event(body, reason=f"{stem}Draining",
                                message=f"{target.id}: {action.reason}")
        else:
            await _delete(rt, pool, target)
            deleted += 1
            await rt.kube.event(body, reason=f"{stem}Deleted",
                                message=f"{target.id}: {action.reason}")
    # a drain request may have been lost: repeat it to draining members still taking calls
    for r in relays:
        if r.draining_since is not None and r.heartbeat and r.fresh and not r.heartbeat.draining:
            await _drain_request(rt, pool, r.id, max(
                0.0, spec.drain.max_seconds - (now - r.draining_since).total_seconds()))
    return Done(created=created, drained=drained, deleted=deleted)
