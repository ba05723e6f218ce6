"""`helm install` of the chart against a real API server, into a namespace that enforces the
restricted Pod Security profile: every pod admitted, every Deployment Available (KWOK plays
the kubelet), `helm upgrade` keeps the generated secrets, `helm uninstall` leaves nothing.

Run for the default values and for each `charts/parley/ci/*-values.yaml`.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from tests.k8s.access import helm_path
from tests.k8s.controlplane import ROOT, ControlPlane

pytestmark = pytest.mark.k8s

CHART: Final = ROOT / "charts" / "parley"
VALUES: Final = [None, *sorted((CHART / "ci").glob("*-values.yaml"))]
RELEASE: Final = "parley"
# what every namespace has of its own, whatever was installed into it
BUILT_IN: Final = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}


def helm(plane: ControlPlane, *args: str, timeout: float = 300) -> str:
    proc = subprocess.run([helm_path(), "--kubeconfig", str(plane.kubeconfig), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stderr}"
    return proc.stdout


def kubectl_json(plane: ControlPlane, *args: str) -> Any:
    out = plane.kubectl(*args, "-o", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def restricted_namespace(plane: ControlPlane) -> str:
    ns = f"parley-{secrets.token_hex(3)}"
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest"}}}
    out = plane.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    assert out.returncode == 0, out.stderr
    return ns


def prerequisites(plane: ControlPlane, ns: str, values: dict[str, Any]) -> None:
    """What a values file expects to exist already (its existing Secrets, the Prometheus
    Operator's CRDs), and the volume a cluster's storage provisioner would
    give the bundled NATS (none runs here)."""
    objects: list[dict[str, Any]] = []
    existing = values.get("secrets", {})
    if existing.get("existingSecret"):
        objects.append({"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": existing["existingSecret"], "namespace": ns}, "stringData": {
            "tokenKey": secrets.token_urlsafe(32), "hashKey": secrets.token_urlsafe(32),
            "metricsApiKeys": secrets.token_urlsafe(24),
            "logpurgeAdminKey": secrets.token_urlsafe(24)}})
    if existing.get("existingTurnSecret"):
        objects.append({"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": existing["existingTurnSecret"], "namespace": ns}, "stringData": {
            "current": secrets.token_urlsafe(24), "previous": ""}})
    if not values.get("nats", {}).get("url"):
        objects.append({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {
            "name": f"{ns}-nats"}, "spec": {
            "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "hostPath": {"path": f"/var/tmp/{ns}-nats"},
            "claimRef": {"namespace": ns, "name": f"data-{RELEASE}-nats-0"}}})
    for obj in objects:
        out = plane.kubectl("apply", "-f", "-", input=json.dumps(obj))
        assert out.returncode == 0, out.stderr
    if values.get("prometheusRule", {}).get("enabled"):  # the Prometheus Operator's CRD
        crds = Path(__file__).parent / "crds" / "prometheus-operator.yaml"
        out = plane.kubectl("apply", "-f", str(crds))
        assert out.returncode == 0, out.stderr
        wait = plane.kubectl("wait", "--for=condition=Established", "--timeout=30s",
                             "-f", str(crds))
        assert wait.returncode == 0, wait.stderr


def generated_secrets(plane: ControlPlane, ns: str) -> dict[str, dict[str, str]]:
    items = kubectl_json(plane, "get", "secrets", "-n", ns, "-l",
                         f"app.kubernetes.io/instance={RELEASE}")["items"]
    return {s["metadata"]["name"]: {k: base64.b64decode(v).decode()
                                    for k, v in (s.get("data") or {}).items()}
            for s in items if s["type"] == "Opaque"}


def leftovers(plane: ControlPlane, ns: str) -> list[tuple[str, str]]:
    """Every object left in the namespace (of every listable namespaced kind, events
    aside) and every cluster-scoped object of the release."""
    kinds = plane.kubectl("api-resources", "--namespaced=true", "--verbs=list", "-o", "name")
    names = [k for k in kinds.stdout.split() if not k.startswith("events")]
    left: list[tuple[str, str]] = []
    items = kubectl_json(plane, "get", ",".join(names), "-n", ns, "--ignore-not-found")
    for item in items.get("items", []):
        key = (item["kind"], item["metadata"]["name"])
        if key not in BUILT_IN:
            left.append(key)
    cluster = kubectl_json(plane, "get", "clusterroles,clusterrolebindings", "-l",
                           f"app.kubernetes.io/instance={RELEASE}")
    for item in cluster["items"]:
        if ns in item["metadata"]["name"]:
            left.append((item["kind"], item["metadata"]["name"]))
    return left


def assert_all_available(plane: ControlPlane, ns: str) -> None:
    deployments = kubectl_json(plane, "get", "deployments", "-n", ns)["items"]
    assert deployments, "the chart made no Deployment"
    for d in deployments:
        conditions = {c["type"]: c for c in d["status"].get("conditions", [])}
        assert conditions.get("Available", {}).get("status") == "True", (
            d["metadata"]["name"], conditions)
        assert d["status"].get("readyReplicas") == d["spec"]["replicas"], d["status"]
    for rs in kubectl_json(plane, "get", "replicasets,statefulsets", "-n", ns)["items"]:
        failed = [c for c in rs["status"].get("conditions", []) if c["type"] ==
                  "ReplicaFailure"]
        assert not failed, (rs["metadata"]["name"], failed)  # e.g. Pod Security refused a pod
    events = kubectl_json(plane, "get", "events", "-n", ns,
                          "--field-selector", "reason=FailedCreate")["items"]
    assert not events, [e["message"] for e in events]


@pytest.mark.parametrize("values_file", VALUES,
                         ids=[v.name.removesuffix("-values.yaml") if v else "default"
                              for v in VALUES])
def test_chart_install_upgrade_uninstall_restricted(
    control_plane: ControlPlane, values_file: Path | None,
) -> None:
    values = yaml.safe_load(values_file.read_text()) if values_file else {}
    ns = restricted_namespace(control_plane)
    try:
        prerequisites(control_plane, ns, values)
        extra = ["--values", str(values_file)] if values_file else []
        helm(control_plane, "install", RELEASE, str(CHART), "--namespace", ns, *extra,
             "--wait", "--timeout", "4m")
        assert_all_available(control_plane, ns)
        before = generated_secrets(control_plane, ns)

        helm(control_plane, "upgrade", RELEASE, str(CHART), "--namespace", ns, *extra,
             "--wait", "--timeout", "4m")
        assert generated_secrets(control_plane, ns) == before, "upgrade changed a secret"
        assert_all_available(control_plane, ns)

        helm(control_plane, "uninstall", RELEASE, "--namespace", ns, "--wait",
             "--timeout", "3m")
        # owned objects (ReplicaSets, Pods, claims) go with their owners, by the garbage
        # collector: give it a moment
        deadline_left: list[tuple[str, str]] = []
        for _ in range(60):
            deadline_left = [o for o in leftovers(control_plane, ns)
                             if o[0] not in ("Secret",) or o not in prereq_keys(values)]
            if not deadline_left:
                break
            subprocess.run(["sleep", "1"], check=False)
        assert not deadline_left, f"left behind after uninstall: {deadline_left}"
    finally:
        control_plane.kubectl("delete", "namespace", ns, "--wait=false")
        control_plane.kubectl("delete", "pv", f"{ns}-nats", "--ignore-not-found",
                              "--wait=false")


def prereq_keys(values: dict[str, Any]) -> set[tuple[str, str]]:
    """The Secrets the test made before the install: not the release's to remove."""
    existing = values.get("secrets", {})
    return {("Secret", existing[k]) for k in ("existingSecret", "existingTurnSecret")
            if existing.get(k)}
