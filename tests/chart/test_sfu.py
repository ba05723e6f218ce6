"""The chart's SFU fleet (ci/sfu-values.yaml): the SfuPool, rooms' mesh limit, the operator's
rights and settings, the NetworkPolicies of SFU pods, and trace settings reaching relays."""

from __future__ import annotations

from typing import Any

import pytest

from parley_operator.pool import SFU, PoolRef, parse_sfu_pool_spec
from parley_operator.sfu_manifests import build_sfu_pod_spec
from tests.chart.conftest import CHART, Manifest, run_helm

SFU_VALUES = CHART / "ci" / "sfu-values.yaml"


def _one(manifests: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    (found,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _selects(policy: Manifest, labels: dict[str, str]) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def test_sfu_off_by_default(render: Any) -> None:
    manifests = render()
    assert not [m for m in manifests if m["kind"] == "SfuPool"]
    rooms = _one(manifests, "Deployment", "parley-rooms")
    assert "PARLEY_MESH_MAX" not in _env(rooms["spec"]["template"]["spec"]["containers"][0])
    role = _one(manifests, "Role", "parley-operator")
    assert not [r for r in role["rules"] if "sfupools" in r["resources"]]
    op = _env(_one(manifests, "Deployment", "parley-operator")
              ["spec"]["template"]["spec"]["containers"][0])
    assert "PARLEY_OPERATOR_SFU_POOLS" not in op  # it does not watch what it may not read


def test_sfu_values_render_the_pool_and_its_settings(render: Any) -> None:
    manifests = render(SFU_VALUES)
    pool = _one(manifests, "SfuPool", "parley-sfu")
    assert pool["spec"]["exposure"]["mode"] == "NodePort"
    assert pool["spec"]["replicas"] == {"min": 1, "max": 4}
    assert pool["spec"]["ports"] == {"listen": 7882}
    # the operator would accept it as it is
    spec, _ = parse_sfu_pool_spec(pool["spec"])
    assert spec.scaling.target_peers_per_sfu == 60
    rooms = _env(_one(manifests, "Deployment", "parley-rooms")
                 ["spec"]["template"]["spec"]["containers"][0])
    assert rooms["PARLEY_MESH_MAX"] == "2" and rooms["PARLEY_SFU_ROOM_CAPACITY"] == "12"
    op = _env(_one(manifests, "Deployment", "parley-operator")
              ["spec"]["template"]["spec"]["containers"][0])
    assert op["PARLEY_OPERATOR_SFU_POOLS"] == "true"
    assert op["PARLEY_OPERATOR_SFU_NATS_URL"] == "secret:parley-connections/sfuNatsUrl"
    assert op["PARLEY_OTEL_EXPORTER"] == "otlp"
    assert op["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability.svc:4318"
    secret = _one(manifests, "Secret", "parley-connections")
    assert "sfuNatsUrl" in secret["data"]


def test_sfu_operator_rbac_only_what_it_needs(render: Any) -> None:
    role = _one(render(SFU_VALUES), "Role", "parley-operator")
    rules = {tuple(r["resources"]): set(r["verbs"]) for r in role["rules"]}
    assert rules[("sfupools",)] == {"get", "list", "watch", "patch"}
    assert rules[("sfupools/status",)] == {"get", "patch", "update"}
    # no Secret of its own: the secrets rule stays the TURN Secret's
    assert all("sfu" not in str(r.get("resourceNames", "")) for r in role["rules"])


def test_sfu_network_policy_and_pdb_select_operator_made_pods(render: Any) -> None:
    manifests = render(SFU_VALUES)
    pool = _one(manifests, "SfuPool", "parley-sfu")
    s, extras = parse_sfu_pool_spec(pool["spec"])
    ref = PoolRef(name=pool["metadata"]["name"], namespace="parley", kind=SFU)
    pod = build_sfu_pod_spec(ref, s, extras, sfu_id="parley-sfu-bcdfg", nats_url="nats://x")
    labels = pod["metadata"]["labels"]
    policies = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    own = [p for p in policies if _selects(p, labels)
           and "app.kubernetes.io/component" in p["spec"]["podSelector"]["matchLabels"]]
    assert [p["metadata"]["name"] for p in own] == ["parley-sfu"]
    (policy,) = own
    first = policy["spec"]["ingress"][0]
    assert {(p["protocol"], p["port"]) for p in first["ports"]} == {("UDP", 7882)}
    assert {b["ipBlock"]["cidr"] for b in first["from"] if "ipBlock" in b} == {
        "0.0.0.0/0", "::/0"}
    assert any("podSelector" in b for b in first["from"])  # relays (always-relay)
    egress = {(p["protocol"], p.get("port")) for r in policy["spec"]["egress"]
              for p in r["ports"]}
    assert egress == {("UDP", 53), ("TCP", 53), ("TCP", 4222), ("TCP", 4318)}
    pdb = _one(manifests, "PodDisruptionBudget", "parley-sfu")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items())
    nats = _one(manifests, "NetworkPolicy", "parley-nats")
    assert any(_selects({"spec": {"podSelector": b["podSelector"]}}, labels)
               for b in nats["spec"]["ingress"][0]["from"])


def test_relays_reach_sfus_and_the_trace_collector(render: Any) -> None:
    relay = _one(render(SFU_VALUES), "NetworkPolicy", "parley-relay")
    egress = {(p["protocol"], p.get("port")) for r in relay["spec"]["egress"] for p in r["ports"]}
    assert ("UDP", 7882) in egress and ("TCP", 4318) in egress
    plain = _one(render(), "NetworkPolicy", "parley-relay")
    egress = {(p["protocol"], p.get("port")) for r in plain["spec"]["egress"] for p in r["ports"]}
    assert ("UDP", 7882) not in egress and ("TCP", 4318) not in egress


@pytest.mark.parametrize(
    ("args", "named"),
    [(["--set", "sfu.enabled=true", "--set", "operator.enabled=false"],
      "sfu.enabled needs operator.enabled"),
     (["--set", "sfu.enabled=true", "--set", "sfu.replicas.min=5", "--set", "sfu.replicas.max=2"],
      "sfu.replicas.min (5) must not exceed sfu.replicas.max (2)"),
     (["--set", "sfu.exposure.mode=HostNetwork"], "/sfu/exposure/mode'"),
     (["--set", "sfu.port=80"], "/sfu/port': minimum: got 80")],
    ids=["without-operator", "min-above-max", "no-host-network", "privileged-port"],
)
def test_sfu_bad_values_fail_naming_them(helm: str, args: list[str], named: str) -> None:
    proc = run_helm(helm, "template", "parley", str(CHART), *args)
    assert proc.returncode != 0, f"helm template {args} succeeded"
    assert named in proc.stderr, proc.stderr
