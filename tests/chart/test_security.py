"""Every pod the chart renders meets the restricted Pod Security Standard, and every
release pod is covered by a default-deny NetworkPolicy plus one that allows its traffic.

The checks follow https://kubernetes.io/docs/concepts/security/pod-security-standards/
(restricted, v1.35): non-root, no privilege escalation, all capabilities dropped (only
NET_BIND_SERVICE may be added), RuntimeDefault or Localhost seccomp, allowed volume types
only, no host namespaces or ports; and Parley's own rules: read-only root filesystem with a
writable /tmp emptyDir, probes and resources on every container.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.chart.conftest import CI_VALUES, Manifest, pod_specs, values_ids

VALUES = [None, *CI_VALUES]
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


def restricted_violations(name: str, pod: Manifest) -> list[str]:
    """What in `pod` breaks the restricted profile (empty when nothing does)."""
    bad: list[str] = []
    psc = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        if pod.get(flag) and flag != "hostUsers":
            bad.append(f"{name}: {flag}")
    for vol in pod.get("volumes", []):
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            bad.append(f"{name}: volume {vol['name']} of type {kinds - RESTRICTED_VOLUMES}")
    if psc.get("runAsUser") == 0:
        bad.append(f"{name}: pod runAsUser 0")
    containers = pod.get("initContainers", []) + pod["containers"]
    for c in containers:
        cname = f"{name}/{c['name']}"
        sc = c.get("securityContext", {})
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            bad.append(f"{cname}: runAsNonRoot not true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            bad.append(f"{cname}: runs as UID 0")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{cname}: allowPrivilegeEscalation not false")
        if sc.get("privileged"):
            bad.append(f"{cname}: privileged")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            bad.append(f"{cname}: capabilities not dropped (ALL)")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            bad.append(f"{cname}: adds capabilities {caps['add']}")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{cname}: seccompProfile {seccomp}")
        if sc.get("readOnlyRootFilesystem") is not True:
            bad.append(f"{cname}: root filesystem writable")
        if not any(m["mountPath"] == "/tmp" for m in c.get("volumeMounts", [])):
            bad.append(f"{cname}: no writable /tmp")
        for port in c.get("ports", []):
            if port.get("hostPort"):
                bad.append(f"{cname}: hostPort {port['hostPort']}")
        if c in pod["containers"]:
            # the operator (kopf) has a liveness endpoint only: it is never "ready" to serve
            wanted = ["livenessProbe"] + ([] if "operator" in cname else ["readinessProbe"])
            if not all(w in c for w in wanted):
                bad.append(f"{cname}: missing probes")
            if not c.get("resources", {}).get("requests"):
                bad.append(f"{cname}: no resource requests")
            if not c.get("resources", {}).get("limits", {}).get("memory"):
                bad.append(f"{cname}: no memory limit")
    return bad


def test_restricted_violations_catches_a_bad_pod() -> None:
    pod = {"hostNetwork": True, "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
           "containers": [{"name": "c",
                           "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]}
    found = "\n".join(restricted_violations("Pod/x", pod))
    for word in ("hostNetwork", "hostPath", "runAsNonRoot", "allowPrivilegeEscalation",
                 "ALL", "NET_ADMIN", "seccompProfile", "root filesystem", "/tmp", "probes"):
        assert word in found, word


@pytest.mark.parametrize("values", VALUES, ids=values_ids)
def test_pod_specs_restricted_profile(render: Any, values: Path | None) -> None:
    specs = list(pod_specs(render(values)))
    assert specs
    bad = [v for name, pod in specs for v in restricted_violations(name, pod)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("values", VALUES, ids=values_ids)
def test_pod_specs_probe_healthz_and_readyz(render: Any, values: Path | None) -> None:
    for name, pod in pod_specs(render(values)):
        component = name.split("/")[1].removeprefix("parley-")
        if component not in ("rooms", "signaling", "metrics", "logpurge"):
            continue
        (c,) = pod["containers"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert pod["automountServiceAccountToken"] is False, name


def _selects(policy: Manifest, labels: dict[str, str]) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


@pytest.mark.parametrize("values", VALUES, ids=values_ids)
def test_network_policies_cover_every_pod(render: Any, values: Path | None) -> None:
    manifests = render(values)
    policies = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    if not policies:
        pytest.skip("networkPolicy.enabled is false in this values file")
    deny = [p for p in policies if p["metadata"]["name"].endswith("-default-deny")]
    assert len(deny) == 1
    assert "ingress" not in deny[0]["spec"] and "egress" not in deny[0]["spec"]
    assert deny[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    allow = [p for p in policies if p not in deny]
    for m in manifests:
        if m["kind"] not in ("Deployment", "StatefulSet"):
            continue
        labels = m["spec"]["template"]["metadata"]["labels"]
        assert _selects(deny[0], labels), m["metadata"]["name"]
        own = [p for p in allow if _selects(p, labels)
               and "app.kubernetes.io/component" in p["spec"]["podSelector"]["matchLabels"]]
        assert len(own) == 1, m["metadata"]["name"]
    # the relay pods the operator makes carry these labels (operator/parley_operator/manifests.py)
    for pool in (m for m in manifests if m["kind"] == "RelayPool"):
        labels = {"app.kubernetes.io/name": "parley", "app.kubernetes.io/component": "relay",
                  "app.kubernetes.io/managed-by": "parley-operator",
                  "parley.dev/pool": pool["metadata"]["name"]}
        own = [p for p in allow if _selects(p, labels)]
        assert [p["metadata"]["name"] for p in own] == ["parley-relay"]
        assert own[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]
        egress_ports = {(p["protocol"], p.get("port")) for r in own[0]["spec"]["egress"]
                        for p in r["ports"]}
        assert ("UDP", 53) in egress_ports and ("TCP", 4222) in egress_ports


def test_network_policy_relays_open_turn_ports_to_clients(render: Any) -> None:
    manifests = render()
    (relay,) = [m for m in manifests if m["kind"] == "NetworkPolicy"
                and m["metadata"]["name"] == "parley-relay"]
    first = relay["spec"]["ingress"][0]
    assert {b["ipBlock"]["cidr"] for b in first["from"]} == {"0.0.0.0/0", "::/0"}
    assert {(p["protocol"], p["port"]) for p in first["ports"]} == {("UDP", 3478), ("TCP", 3478)}
    (redis,) = [m for m in manifests if m["kind"] == "NetworkPolicy"
                and m["metadata"]["name"] == "parley-redis"]
    (rule,) = redis["spec"]["ingress"]
    (expr,) = rule["from"][0]["podSelector"]["matchExpressions"]
    assert set(expr["values"]) == {"rooms", "signaling", "metrics"}
