"""The SfuPool, pure parts: spec parsing, SFU Pods and Services, heartbeats, plan, status;
and the trace settings the operator passes on to relay and SFU pods."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from parley_operator.errors import SpecError
from parley_operator.manifests import Tracing, build_relay_pod_spec, pool_selector
from parley_operator.observe import HeartbeatCache, RelayState, build_observed, collect_relays
from parley_operator.plan import plan
from parley_operator.pool import SFU, PoolRef, kind_of, parse_pool_spec, parse_sfu_pool_spec
from parley_operator.sfu_manifests import build_sfu_pod_spec, build_sfu_service_spec
from parley_operator.status import build_status
from services.common.messages import RelayHeartbeat, SfuHeartbeat
from tests.chart.test_security import restricted_violations

ROOT = Path(__file__).resolve().parents[3]
POOL = PoolRef(name="sfus", namespace="parley", uid="u-2", kind=SFU)
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SID = "sfus-bcdfg"


def _pod(spec: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    s, extras = parse_sfu_pool_spec(spec or {})
    return build_sfu_pod_spec(POOL, s, extras, sfu_id=SID, nats_url="secret:conn/sfuNatsUrl",
                              **kw)


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom"))
            for e in pod["spec"]["containers"][0]["env"]}


def _hb(sid: str, peers: int, draining: bool = False) -> SfuHeartbeat:
    return SfuHeartbeat(sfu_id=sid, peers=peers, capacity=200, draining=draining, sent_at=0.0)


def test_sfu_pod_restricted_without_host_network_and_announces_lb_address() -> None:
    pod = _pod({"resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                              "limits": {"memory": "1Gi"}}}, public_host="203.0.113.20")
    assert restricted_violations("Pod/sfu", pod["spec"]) == []
    spec = pod["spec"]
    assert "hostNetwork" not in spec and spec["automountServiceAccountToken"] is False
    (c,) = spec["containers"]
    assert c["command"] == ["parley", "sfu"]
    assert not any("hostPort" in p for p in c["ports"])
    assert {(p["name"], p["protocol"], p["containerPort"]) for p in c["ports"]} == {
        ("sfu-udp", "UDP", 7882), ("http", "TCP", 9643)}
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = _env(pod)
    assert env["PARLEY_SFU_ID"] == SID
    assert env["PARLEY_SFU_LISTEN"] == "0.0.0.0:7882"
    assert env["PARLEY_SFU_PUBLIC_HOST"] == "203.0.113.20"
    assert "PARLEY_SFU_PUBLIC_PORT" not in env
    assert env["PARLEY_SFU_NATS_URL"] == {"secretKeyRef": {"name": "conn", "key": "sfuNatsUrl"}}
    assert env["PARLEY_SFU_MAX_PEERS"] == "200"
    # SIGTERM's drain deadline fits in the grace period (the operator drained it first)
    assert float(env["PARLEY_SFU_DRAIN_DEADLINE"]) < spec["terminationGracePeriodSeconds"]
    meta = pod["metadata"]
    assert meta["name"] == SID
    assert meta["labels"]["app.kubernetes.io/component"] == "sfu"
    assert meta["labels"]["parley.dev/sfu"] == SID and "parley.dev/relay" not in meta["labels"]
    assert meta["ownerReferences"][0]["kind"] == "SfuPool"


def test_sfu_pod_node_port_announces_node_address_and_port() -> None:
    env = _env(_pod({"exposure": {"mode": "NodePort"}, "maxPeers": 50}, public_port=31882))
    assert env["PARLEY_SFU_PUBLIC_HOST"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert env["PARLEY_SFU_PUBLIC_PORT"] == "31882"
    assert env["PARLEY_SFU_MAX_PEERS"] == "50"


def test_sfu_service_one_udp_port_selects_its_pod_keeps_client_addresses() -> None:
    s, extras = parse_sfu_pool_spec({"exposure": {
        "mode": "NodePort", "serviceAnnotations": {"lb.example/udp": "yes"}}})
    svc = build_sfu_service_spec(POOL, s, extras, sfu_id=SID)
    assert svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["ports"] == [
        {"name": "sfu-udp", "protocol": "UDP", "port": 7882, "targetPort": 7882}]
    assert svc["spec"]["selector"] == {"parley.dev/pool": "sfus", "parley.dev/sfu": SID}
    assert svc["spec"]["externalTrafficPolicy"] == "Local"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["metadata"]["annotations"] == {"lb.example/udp": "yes"}
    assert pool_selector(POOL) == "app.kubernetes.io/component=sfu,parley.dev/pool=sfus"


def test_sfu_pool_spec_refuses_host_network_and_names_the_field() -> None:
    with pytest.raises(SpecError, match=r"spec\.exposure\.mode"):
        parse_sfu_pool_spec({"exposure": {"mode": "HostNetwork"}})
    with pytest.raises(SpecError, match=r"spec\.scaling\.targetPeersPerSfu"):
        parse_sfu_pool_spec({"scaling": {"targetPeersPerSfu": 0}})
    with pytest.raises(SpecError, match=r"spec\.probe"):  # SFUs are not probed
        parse_sfu_pool_spec({"probe": {}})


def test_sfu_pool_spec_chart_object_accepted() -> None:
    """The SfuPool the chart renders (every CRD default written out) parses."""
    crd = yaml.safe_load((ROOT / "charts/parley/crds/sfupools.parley.dev.yaml").read_text())
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    defaults = {k: v["default"] for k, v in props["properties"].items() if "default" in v}
    spec, extras = parse_sfu_pool_spec({**defaults, "imagePullPolicy": "Always",
                                        "nodeSelector": {"pool": "media"}, "tolerations": []})
    assert spec.ports.listen == 7882 and spec.max_peers == 200
    assert extras.node_selector == {"pool": "media"}
    assert kind_of("SfuPool") == SFU and kind_of("RelayPool").kind == "RelayPool"


def test_sfu_heartbeats_are_the_load_and_draining_comes_from_them() -> None:
    cache = HeartbeatCache(ttl=10)
    cache.record(_hb("sfus-aaaaa", 30), now=100.0)
    cache.record(_hb("sfus-bbbbb", 5, draining=True), now=100.0)
    cache.record(RelayHeartbeat(relay_id="relays-ccccc", public_host="198.51.100.1",
                                allocations=9, sent_at=0.0), now=100.0)
    pods = [{"metadata": {"name": n, "labels": {"parley.dev/sfu": n}}, "status": {}}
            for n in ("sfus-aaaaa", "sfus-bbbbb")]
    # a relay pod in the same namespace is not a member of the SfuPool
    pods.append({"metadata": {"name": "relays-ccccc", "labels": {"parley.dev/relay": "x"}}})
    s, _ = parse_sfu_pool_spec({})
    states = collect_relays(s, pods=pods, services=[], cache=cache, probes={},
                            monotonic_now=101.0, member_label=SFU.member_label)
    assert [(r.id, r.allocations, r.phase) for r in states] == [
        ("sfus-aaaaa", 30, "Active"), ("sfus-bbbbb", 5, "Draining")]
    assert states[0].public_address is None  # an SFU's heartbeat carries no address


def test_sfu_plan_scales_on_peers_and_says_so() -> None:
    spec, _ = parse_sfu_pool_spec({"scaling": {"targetPeersPerSfu": 20},
                                   "replicas": {"min": 1, "max": 5}})
    relays = [RelayState(id="sfus-aaaaa", heartbeat=_hb("sfus-aaaaa", 70), fresh=True)]
    decided = plan(spec.plan_spec(), build_observed(relays, status={}, now=NOW), NOW, kind=SFU)
    assert decided.desired_replicas == 4
    creates = [a for a in decided.actions if a.action == "create"]
    assert len(creates) == 3
    assert creates[0].reason == "1 healthy SFUs, 4 wanted (70 peers, target 20)"


def test_sfu_status_counts_peers_lists_sfus_without_secret_or_probe() -> None:
    spec, _ = parse_sfu_pool_spec({})
    relays = [
        RelayState(id="sfus-aaaaa", pod={"metadata": {"name": "sfus-aaaaa"}},
                   heartbeat=_hb("sfus-aaaaa", 12), fresh=True,
                   public_address="203.0.113.20:7882"),
        RelayState(id="sfus-bbbbb", heartbeat=_hb("sfus-bbbbb", 3), fresh=True,
                   draining_since=NOW),
    ]
    decided = plan(spec.plan_spec(), build_observed(relays, status={}, now=NOW), NOW, kind=SFU)
    status = build_status(spec.plan_spec(), relays, decided, previous={}, generation=2,
                          selector=pool_selector(POOL), now=NOW, scaled_up=False,
                          scaled_down=False, secret_rotated_at=None, kind=SFU)
    assert status["peers"] == 15 and "allocations" not in status
    assert "secretRotatedAt" not in status and "relays" not in status
    assert status["sfus"][0] == {"name": "sfus-aaaaa", "phase": "Active", "peers": 12,
                                 "pod": "sfus-aaaaa", "publicAddress": "203.0.113.20:7882"}
    assert status["sfus"][1]["phase"] == "Draining"
    conds = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conds == {"Available": ("True", "SfusReady"), "Progressing": ("True", "Draining"),
                     "Degraded": ("False", "AsExpected")}
    # the CRD's status schema admits it
    crd = yaml.safe_load((ROOT / "charts/parley/crds/sfupools.parley.dev.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert set(status) <= set(schema["properties"])
    assert set(status["sfus"][0]) <= set(schema["properties"]["sfus"]["items"]["properties"])


def test_tracing_settings_reach_relay_and_sfu_pods() -> None:
    tracing = Tracing(exporter="otlp", otlp_endpoint="http://otel.observability.svc:4318")
    relay_spec, extras = parse_pool_spec({})
    relay = build_relay_pod_spec(
        PoolRef(name="relays", namespace="parley"), relay_spec, extras, relay_id="relays-abcde",
        secret="relays-turn", nats_url="nats://nats:4222", public_host="203.0.113.9",
        tracing=tracing)
    env = _env(relay)
    assert env["PARLEY_RELAY_OTEL_EXPORTER"] == "otlp"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel.observability.svc:4318"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    sfu = _env(_pod(public_host="203.0.113.20", tracing=tracing))
    assert sfu["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel.observability.svc:4318"
    # no tracing given: the relay's own default (none), nothing added
    plain = _env(build_relay_pod_spec(
        PoolRef(name="relays", namespace="parley"), relay_spec, extras, relay_id="relays-abcde",
        secret="relays-turn", nats_url="nats://nats:4222", public_host="203.0.113.9"))
    assert not any("OTEL" in k for k in plain)
