"""Pure status parts: observing relays from objects + heartbeats, conditions, probe records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from parley_operator.observe import (
    HeartbeatCache, ProbeRecord, RelayState, build_observed, collect_relays,
)
from parley_operator.plan import Action, Plan
from parley_operator.probe import next_record
from parley_operator.spec import PoolSpec
from parley_operator.status import build_status, compute_conditions, invalid_spec_status
from services.common.messages import RelayHeartbeat

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SPEC = PoolSpec.model_validate({"replicas": {"min": 1, "max": 4}})


def _hb(rid: str, allocations: int = 0, draining: bool = False) -> RelayHeartbeat:
    return RelayHeartbeat(relay_id=rid, public_host="198.51.100.1", allocations=allocations,
                          draining=draining, sent_at=0.0)


def _relay(rid: str, *, fresh: bool = True, allocations: int = 0, draining: bool = False,
           probe: ProbeRecord | None = None) -> RelayState:
    return RelayState(id=rid, pod={"metadata": {"name": rid}}, heartbeat=_hb(rid, allocations),
                      fresh=fresh, draining_since=NOW if draining else None, probe=probe)


def _types(conds: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in conds}


def test_compute_conditions_all_ready_stable() -> None:
    ok = ProbeRecord(time=NOW, ok=True)
    conds = compute_conditions(SPEC, [_relay("a", probe=ok)], Plan(desired_replicas=1),
                               previous=[], generation=3, now=NOW)
    assert _types(conds) == {
        "Available": ("True", "RelaysReady"), "Progressing": ("False", "Stable"),
        "Degraded": ("False", "AsExpected"), "ProbeHealthy": ("True", "ProbeSucceeded")}
    assert all(c["observedGeneration"] == 3 for c in conds)
    assert all(c["lastTransitionTime"] == "2026-11-25T12:00:00Z" for c in conds)


def test_compute_conditions_no_ready_relay_scaling_up() -> None:
    plan = Plan(desired_replicas=2, actions=[Action(action="create", reason="r")] * 2)
    conds = compute_conditions(SPEC, [], plan, previous=[], generation=None, now=NOW)
    assert _types(conds) == {
        "Available": ("False", "NoReadyRelay"), "Progressing": ("True", "ScalingUp"),
        "Degraded": ("True", "BelowMinimum"), "ProbeHealthy": ("Unknown", "NotProbed")}
    assert "observedGeneration" not in conds[0]


def test_compute_conditions_probe_failures_degrade() -> None:
    bad = ProbeRecord(time=NOW, ok=False, message="ICE failed", consecutive_failures=3)
    conds = compute_conditions(SPEC, [_relay("a", probe=bad)], Plan(desired_replicas=1),
                               previous=[], generation=None, now=NOW)
    by = {c["type"]: c for c in conds}
    assert (by["Degraded"]["status"], by["Degraded"]["reason"]) == ("True", "ProbeFailures")
    assert "a" in by["Degraded"]["message"]
    assert (by["ProbeHealthy"]["status"], by["ProbeHealthy"]["reason"]) == ("False", "ProbeFailed")


def test_compute_conditions_keeps_transition_time_when_status_unchanged() -> None:
    before = [{"type": "Available", "status": "True", "reason": "RelaysReady", "message": "",
               "lastTransitionTime": "2026-01-01T00:00:00Z"},
              {"type": "Progressing", "status": "True", "reason": "ScalingUp", "message": "",
               "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    conds = compute_conditions(SPEC, [_relay("a")], Plan(desired_replicas=1), previous=before,
                               generation=None, now=NOW)
    by = {c["type"]: c for c in conds}
    assert by["Available"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert by["Progressing"]["lastTransitionTime"] == "2026-11-25T12:00:00Z"


def test_compute_conditions_scaled_to_zero_is_available() -> None:
    spec = PoolSpec.model_validate({"replicas": {"min": 0, "max": 2}})
    conds = compute_conditions(spec, [], Plan(desired_replicas=0), previous=[], generation=None,
                               now=NOW)
    assert _types(conds)["Available"] == ("True", "ScaledToZero")


def test_build_status_counts_and_relay_entries() -> None:
    relays = [_relay("a", allocations=7), _relay("b", allocations=2, draining=True),
              _relay("c", fresh=False)]
    status = build_status(SPEC, relays, Plan(desired_replicas=2), previous={}, generation=4,
                          selector="s", now=NOW, scaled_up=False, scaled_down=True,
                          secret_rotated_at=None)
    assert (status["replicas"], status["readyReplicas"], status["drainingReplicas"]) == (2, 1, 1)
    assert status["allocations"] == 9
    assert status["lastScaleDown"] == "2026-11-25T12:00:00Z"
    assert status["observedGeneration"] == 4
    assert [(r["name"], r["phase"]) for r in status["relays"]] == [
        ("a", "Active"), ("b", "Draining"), ("c", "Pending")]


def test_invalid_spec_status_degraded() -> None:
    patch = invalid_spec_status("spec.replicas: bad", previous={}, generation=2, now=NOW)
    assert patch["conditions"][0]["reason"] == "InvalidSpec"
    assert patch["conditions"][0]["message"] == "spec.replicas: bad"


def test_heartbeat_cache_stale_relay_not_fresh() -> None:
    cache = HeartbeatCache(ttl=10)
    cache.record(_hb("a", 3), now=100.0)
    assert cache.fresh("a", now=109.0)
    assert not cache.fresh("a", now=111.0)
    assert cache.latest("a") is not None and cache.latest("a").allocations == 3  # type: ignore[union-attr]


def test_collect_relays_joins_pods_services_heartbeats() -> None:
    cache = HeartbeatCache(ttl=10)
    cache.record(_hb("r-1", 4), now=0.0)
    pods = [
        {"metadata": {"name": "r-1", "labels": {"parley.dev/relay": "r-1"}},
         "status": {"phase": "Running", "hostIP": "192.0.2.5"}},
        {"metadata": {"name": "r-2", "labels": {"parley.dev/relay": "r-2"},
                      "annotations": {"parley.dev/draining-since": "2026-11-25T11:00:00Z"}}},
        {"metadata": {"name": "r-3", "labels": {"parley.dev/relay": "r-3"},
                      "deletionTimestamp": "2026-11-25T11:00:00Z"}},
        {"metadata": {"name": "r-4", "labels": {"parley.dev/relay": "r-4"}},
         "status": {"phase": "Failed"}},
    ]
    svcs = [{"metadata": {"name": "r-1", "labels": {"parley.dev/relay": "r-1"}},
             "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.1"}]}}},
            {"metadata": {"name": "r-5", "labels": {"parley.dev/relay": "r-5"}}}]
    relays = collect_relays(SPEC, pods=pods, services=svcs, cache=cache, probes={},
                            monotonic_now=1.0)
    by = {r.id: r for r in relays}
    assert sorted(by) == ["r-1", "r-2", "r-4", "r-5"]  # r-3 is being deleted
    assert by["r-1"].phase == "Active" and by["r-1"].public_address == "203.0.113.1:3478"
    assert by["r-2"].phase == "Drained"
    assert by["r-4"].draining and by["r-4"].allocations == 0  # terminated: deleted by plan
    assert by["r-5"].phase == "Pending" and by["r-5"].pod is None
    observed = build_observed(relays, status={"lastScaleUp": "2026-11-25T11:59:00Z"}, now=NOW)
    assert observed.last_scale_up == NOW - timedelta(minutes=1)
    assert [(r.id, r.allocations, r.ready, r.draining) for r in observed.relays] == [
        ("r-1", 4, True, False), ("r-2", 0, False, True), ("r-4", 0, False, True),
        ("r-5", 0, False, False)]


def test_next_record_counts_consecutive_failures() -> None:
    first = next_record(None, ok=False, message="x", now=NOW)
    second = next_record(first, ok=False, message="x", now=NOW)
    assert (first.consecutive_failures, second.consecutive_failures) == (1, 2)
    assert next_record(second, ok=True, message="ok", now=NOW).consecutive_failures == 0
    assert ProbeRecord.from_status(second.to_status()) == second
