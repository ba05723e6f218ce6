"""`plan()`: every rule, table-driven, including the boundary cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from parley_operator.plan import Observed, ObservedRelay, plan
from parley_operator.spec import PoolSpec

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def spec(**kw: Any) -> PoolSpec:
    base: dict[str, Any] = {
        "replicas": {"min": 1, "max": 5},
        "scaling": {"targetAllocationsPerRelay": 100, "scaleDownStabilizationSeconds": 300,
                    "maxScaleDownPerMinute": 1},
        "drain": {"maxSeconds": 600},
        "probe": {"failureThreshold": 3},
    }
    base.update(kw)
    return PoolSpec.model_validate(base)


def relay(rid: str, allocations: int = 0, *, draining: bool = False, since: float | None = None,
          ready: bool = True, probe_failures: int = 0) -> ObservedRelay:
    return ObservedRelay(
        id=rid, allocations=allocations, draining=draining, ready=ready,
        draining_since=None if since is None else NOW - timedelta(seconds=since),
        probe_failures=probe_failures)


def observed(*relays: ObservedRelay, down_ago: float | None = None,
             up_ago: float | None = None) -> Observed:
    return Observed(
        relays=list(relays),
        last_scale_down=None if down_ago is None else NOW - timedelta(seconds=down_ago),
        last_scale_up=None if up_ago is None else NOW - timedelta(seconds=up_ago))


def summary(p: Any) -> list[tuple[str, str | None]]:
    return [(a.action, a.relay) for a in p.actions]


CASES: list[tuple[str, PoolSpec, Observed, int, list[tuple[str, str | None]]]] = [
    ("empty pool starts at min", spec(), observed(), 1, [("create", None)]),
    ("steady state does nothing", spec(), observed(relay("a", 50)), 1, []),
    ("scale up at once above target", spec(), observed(relay("a", 250)), 3,
     [("create", None), ("create", None)]),
    ("scale up capped at max", spec(), observed(relay("a", 5000)), 5, [("create", None)] * 4),
    ("exactly at target needs no more", spec(), observed(relay("a", 100)), 1, []),
    ("scale down drains least loaded", spec(),
     observed(relay("a", 40), relay("b", 5), relay("c", 30)), 1, [("drain", "b")]),
    ("scale down one per minute", spec(scaling={"scaleDownStabilizationSeconds": 0}),
     observed(relay("a", 1), relay("b", 0), relay("c", 0), down_ago=61), 1, [("drain", "b")]),
    ("scale down quota of this minute spent", spec(scaling={"scaleDownStabilizationSeconds": 0}),
     observed(relay("a", 1), relay("b", 0), relay("c", 0), down_ago=30), 1, []),
    ("scale down waits for the stabilization window", spec(),
     observed(relay("a", 1), relay("b", 0), down_ago=100), 1, []),
    ("flapping load inside the window: no scale down after a scale up", spec(),
     observed(relay("a", 10), relay("b", 0), up_ago=120), 1, []),
    ("scale down allowed after the window", spec(),
     observed(relay("a", 10), relay("b", 0), up_ago=301, down_ago=400), 1, [("drain", "b")]),
    ("rate cap above one", spec(scaling={"targetAllocationsPerRelay": 100,
                                         "scaleDownStabilizationSeconds": 0,
                                         "maxScaleDownPerMinute": 2}),
     observed(relay("a", 3), relay("b", 1), relay("c", 2), relay("d", 0)), 1,
     [("drain", "d"), ("drain", "b")]),
    ("never below min", spec(replicas={"min": 2, "max": 5}),
     observed(relay("a", 0), relay("b", 0)), 2, []),
    ("draining relay deleted when empty", spec(),
     observed(relay("a", 10), relay("b", 0, draining=True, since=5)), 1, [("delete", "b")]),
    ("draining relay kept while it has calls", spec(),
     observed(relay("a", 10), relay("b", 3, draining=True, since=5)), 1, []),
    ("draining relay deleted at its deadline", spec(),
     observed(relay("a", 10), relay("b", 3, draining=True, since=600)), 1, [("delete", "b")]),
    ("all relays draining: create min", spec(),
     observed(relay("a", 3, draining=True, since=10)), 1, [("create", None)]),
    ("draining relays' load does not count", spec(),
     observed(relay("a", 50), relay("b", 400, draining=True, since=10)), 1, []),
    ("a vanished relay is replaced", spec(replicas={"min": 2, "max": 5}),
     observed(relay("a", 10)), 2, [("create", None)]),
    ("a relay failing its probe is drained and replaced", spec(),
     observed(relay("a", 10, probe_failures=3)), 1, [("drain", "a"), ("create", None)]),
    ("probe failures below threshold are tolerated", spec(),
     observed(relay("a", 10, probe_failures=2)), 1, []),
    ("not-ready relays drained first on scale down", spec(),
     observed(relay("a", 0), relay("b", 0, ready=False)), 1, [("drain", "b")]),
    ("scale subresource sets desired", spec(replicas={"min": 1, "max": 5, "desired": 3}),
     observed(relay("a", 0)), 3, [("create", None), ("create", None)]),
    ("scale subresource clamped to max", spec(replicas={"min": 1, "max": 2, "desired": 9}),
     observed(relay("a"), relay("b")), 2, []),
]


@pytest.mark.parametrize(("name", "s", "obs", "desired", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_plan_rules(name: str, s: PoolSpec, obs: Observed, desired: int,
                    expected: list[tuple[str, str | None]]) -> None:
    result = plan(s, obs, NOW)
    assert result.desired_replicas == desired
    assert summary(result) == expected
    assert all(a.reason for a in result.actions)


def test_plan_is_pure() -> None:
    s, obs = spec(), observed(relay("a", 250))
    assert plan(s, obs, NOW) == plan(s, obs, NOW)


def test_pool_spec_rejects_min_above_max() -> None:
    with pytest.raises(ValueError, match=r"replicas\.min"):
        spec(replicas={"min": 6, "max": 5})


def test_pool_spec_rejects_unknown_field() -> None:
    with pytest.raises(ValueError):
        PoolSpec.model_validate({"replicaz": {}})
