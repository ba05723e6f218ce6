"""kopf handlers: each round observes, plans and acts, then writes the pool's status.

RelayPools and SfuPools run the same round (their `PoolKind` says what differs: an SfuPool
has no TURN Secret and no probe). Rounds run on create/resume/spec update and on a timer;
a second timer probes relays.
A spec that does not validate is a `kopf.PermanentError` (with the field named).
`make_registry` builds a fresh registry so that tests can run the operator in-process.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import kopf

from parley_operator import act
from parley_operator.errors import SpecError
from parley_operator.kube import GROUP, PLURAL, SFU_PLURAL, VERSION, Kube
from parley_operator.manifests import (
    Tracing, pool_labels, pool_selector, secret_name, secret_values,
)
from parley_operator.observe import (
    HeartbeatCache, ProbeRecord, RelayState, build_observed, collect_relays, subscribe_heartbeats,
)
from parley_operator.plan import plan
from parley_operator.pool import SFU, PoolExtras, PoolRef, parse_pool_spec, parse_sfu_pool_spec
from parley_operator.probe import ProbeFn, next_record, subprocess_probe
from parley_operator.runtime import Runtime, utcnow
from parley_operator.spec import PoolSpec, SfuPoolSpec
from parley_operator.status import build_status, invalid_spec_status, rfc3339
from services.common.bus import NatsBus

__all__ = ["Options", "make_registry", "probe_round", "reconcile"]

log = logging.getLogger("parley.operator")


@dataclass(frozen=True, slots=True)
class Options:
    """How the operator runs (from `parley operator run`)."""

    nats_url: str
    relay_nats_url: str | None = None  # what relay pods connect to; default nats_url
    sfu_nats_url: str | None = None  # what SFU pods connect to; default relay_nats_url
    tracing: Tracing | None = None  # copied to relay and SFU pods
    server: str | None = None  # API server URL without credentials (a fake, kubectl proxy)
    reconcile_seconds: float = 10.0
    probe_tick_seconds: float = 5.0
    heartbeat_ttl: float = 10.0
    probe: bool = True
    sfu_pools: bool = False  # also run SfuPools (the chart grants their RBAC only then)


def _spec(body: kopf.Body | dict[str, Any]
          ) -> tuple[PoolRef, PoolSpec | SfuPoolSpec, PoolExtras]:
    pool = PoolRef.from_body(dict(body))
    raw = dict(body.get("spec") or {})
    spec, extras = parse_sfu_pool_spec(raw) if pool.kind == SFU else parse_pool_spec(raw)
    return pool, spec, extras


def _rules(spec: PoolSpec | SfuPoolSpec) -> PoolSpec:
    """The planner's and the status's view: an SfuPool's peers stand for allocations."""
    return spec.plan_spec() if isinstance(spec, SfuPoolSpec) else spec


async def _observe(rt: Runtime, pool: PoolRef, spec: PoolSpec | SfuPoolSpec,
                   status: dict[str, Any]) -> list[RelayState]:
    labels = pool_labels(pool)
    pods = await rt.kube.list("Pod", namespace=pool.namespace, labels=labels)
    svcs = await rt.kube.list("Service", namespace=pool.namespace, labels=labels)
    book = rt.probes(pool)
    for entry in status.get(pool.kind.members_key) or []:  # after a restart: probe counts
        rec = ProbeRecord.from_status(entry.get("lastProbe") or {})
        if rec is not None and entry.get("name") not in book:
            book[str(entry["name"])] = rec
    return collect_relays(spec, pods=pods, services=svcs, cache=rt.cache, probes=book,
                          monotonic_now=rt.monotonic(), member_label=pool.kind.member_label)


async def reconcile(rt: Runtime, body: dict[str, Any]) -> None:
    """One round on one pool: observe → plan → act → status."""
    pool, spec, extras = _spec(body)
    async with rt.lock(pool):
        fresh = await rt.kube.get(pool.kind.kind, pool.name,
                                  namespace=pool.namespace) or body
        status = dict(fresh.get("status") or {})
        now = rt.clock()
        relays = await _observe(rt, pool, spec, status)
        secret = (await act.ensure_secret(rt, pool, spec, extras, fresh, relays, now)
                  if isinstance(spec, PoolSpec) else None)
        secret_ref = secret.name if secret else ""
        await act.start_waiting_relays(rt, pool, spec, extras, relays, secret_ref)
        rules = _rules(spec)
        decided = plan(rules, build_observed(relays, status=status, now=now), now,
                       kind=pool.kind)
        done = await act.carry_out(rt, pool, spec, extras, decided, relays, secret_ref,
                                   fresh, now)
        if done != act.Done():
            relays = await _observe(rt, pool, spec, status)
        new_status = build_status(
            rules, relays, decided, previous=status,
            generation=(fresh.get("metadata") or {}).get("generation"),
            selector=pool_selector(pool), now=now, scaled_up=done.created > 0,
            scaled_down=done.drained > 0,
            secret_rotated_at=rfc3339(secret.rotated_at) if secret and secret.rotated_at
            else None, kind=pool.kind)
        await rt.kube.patch(pool.kind.kind, pool.name,
                            {"status": new_status},
                            namespace=pool.namespace, status=True)


async def probe_round(rt: Runtime, body: dict[str, Any]) -> bool:
    """Probe every active relay whose last probe is older than the interval; True if any ran."""
    pool, spec, extras = _spec(body)
    if not pool.kind.probed:
        return False
    status = dict(body.get("status") or {})
    relays = await _observe(rt, pool, spec, status)
    now = rt.clock()
    book = rt.probes(pool)
    interval = _rules(spec).probe.interval_seconds
    due = [r for r in relays if r.phase == "Active" and r.public_address and (
        r.id not in book or (now - book[r.id].time).total_seconds() >= interval)]
    if not due:
        return False
    found = await rt.kube.get("Secret", secret_name(pool, extras), namespace=pool.namespace)
    current = secret_values(found)[0] if found else ""
    results = await asyncio.gather(*(rt.probe(str(r.public_address), current) for r in due))
    for r, (ok, message) in zip(due, results, strict=True):
        book[r.id] = next_record(book.get(r.id), ok=ok, message=message, now=now)
    return True


# --- kopf glue ------------------------------------------------------------------------


def _runtime(memo: kopf.Memo) -> Runtime:
    rt: Runtime = memo["runtime"]
    return rt


async def on_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Configure kopf, connect to NATS and the API, start caching heartbeats."""
    opts: Options = memo["options"]
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix="kopf.parley.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kopf.parley.dev", key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    # the namespaces are named and the CRD comes with the chart: no need (nor RBAC) to scan
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    kube = Kube.from_url(opts.server) if opts.server else Kube.from_environment()
    bus = await NatsBus.connect(opts.nats_url, name="operator")
    relay_url = opts.relay_nats_url or opts.nats_url
    rt = Runtime(kube=kube, bus=bus, relay_nats_url=relay_url,
                 sfu_nats_url=opts.sfu_nats_url or relay_url, tracing=opts.tracing,
                 cache=HeartbeatCache(ttl=opts.heartbeat_ttl),
                 probe=memo.get("probe") or subprocess_probe, clock=memo.get("clock") or utcnow)
    rt.subscription = await subscribe_heartbeats(bus, rt.cache, rt.monotonic)
    memo["runtime"] = rt


async def on_cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Close NATS and the API client."""
    if "runtime" in memo:
        await _runtime(memo).close()


def on_login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """The API kopf watches: `--server` if given, else in-cluster, else KUBECONFIG."""
    opts: Options = memo["options"]
    if opts.server:
        return kopf.ConnectionInfo(server=opts.server, default_namespace="default")
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


async def on_change(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Create / resume / spec update: validate, then run a round at once."""
    rt = _runtime(memo)
    try:
        await reconcile(rt, dict(body))
    except SpecError as exc:
        meta, status = dict(body.get("metadata") or {}), dict(body.get("status") or {})
        patch = invalid_spec_status(str(exc), previous=status, generation=meta.get("generation"),
                                    now=rt.clock())
        await rt.kube.patch(PoolRef.from_body(dict(body)).kind.kind,
                            str(meta["name"]), {"status": patch},
                            namespace=str(meta.get("namespace") or "default"), status=True)
        raise kopf.PermanentError(str(exc)) from exc


async def on_timer(body: kopf.Body, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """The periodic round (heartbeat load changes no Kubernetes object)."""
    try:
        await reconcile(_runtime(memo), dict(body))
    except SpecError as exc:
        logger.debug("not reconciling an invalid spec: %s", exc)


async def on_probe_timer(body: kopf.Body, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """Probe the relays that are due, then run a round to write the results."""
    rt = _runtime(memo)
    try:
        if await probe_round(rt, dict(body)):
            await reconcile(rt, dict(body))
    except SpecError as exc:
        logger.debug("not probing an invalid spec: %s", exc)


def make_registry(opts: Options) -> kopf.OperatorRegistry:
    """A registry with every handler of the operator (RelayPools and SfuPools)."""
    reg = kopf.OperatorRegistry()
    res = (GROUP, VERSION, PLURAL)
    kopf.on.startup(registry=reg)(on_startup)
    kopf.on.cleanup(registry=reg)(on_cleanup)
    kopf.on.login(registry=reg)(on_login)
    for plural in (PLURAL, SFU_PLURAL) if opts.sfu_pools else (PLURAL,):
        kind = (GROUP, VERSION, plural)
        kopf.on.create(*kind, registry=reg)(on_change)
        kopf.on.resume(*kind, registry=reg)(on_change)
        kopf.on.update(*kind, field="spec", registry=reg)(on_change)
        # a round that failed (an API call cut short, a NATS hiccup) is retried at the next
        # interval, not after kopf's default minute: a pool must not stall on a transient error
        kopf.timer(*kind, interval=opts.reconcile_seconds, backoff=opts.reconcile_seconds,
                   registry=reg)(on_timer)
    if opts.probe:
        kopf.timer(*res, interval=opts.probe_tick_seconds, backoff=opts.probe_tick_seconds,
                   registry=reg)(on_probe_timer)
    return reg


async def run_operator(
    opts: Options, *, namespaces: list[str], standalone: bool = True,
    peering: str | None = None, liveness: str | None = None,
    stop_flag: asyncio.Event | None = None, ready_flag: asyncio.Event | None = None,
    probe: ProbeFn | None = None, clock: Any = None,
) -> None:
    """Run the operator in this event loop until `stop_flag` is set (or a signal)."""
    memo = kopf.Memo(options=opts, probe=probe, clock=clock)
    await kopf.operator(
        registry=make_registry(opts), memo=memo, namespaces=namespaces,
        clusterwide=not namespaces, standalone=standalone if peering is None else False,
        peering_name=peering, liveness_endpoint=liveness,
        stop_flag=stop_flag, ready_flag=ready_flag,
    )
