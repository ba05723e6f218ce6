"""`helm lint` and `helm template` of charts/parley: every rendered object valid.

Each object is validated for Kubernetes 1.35 with kubernetes-validate --strict (unknown
fields rejected); the RelayPool against the openAPIV3Schema of its own CRD; the
Prometheus operator's objects, whose schemas are not available offline, for their shape.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.chart.conftest import (
    CHART, CI_VALUES, KUBE_VERSION, PROMETHEUS_API, Manifest, run_helm, values_ids,
)

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate",
    reason="kubernetes-validate is not installed (pip install kubernetes-validate)",
)

VALUES = [None, *CI_VALUES]
CRD_FILE = CHART / "crds" / "relaypools.parley.dev.yaml"
CRD_FILES = {"RelayPool": CRD_FILE, "SfuPool": CHART / "crds" / "sfupools.parley.dev.yaml"}


def _crd_schema(kind: str = "RelayPool") -> dict[str, Any]:
    crd = yaml.safe_load(CRD_FILES[kind].read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


def _validate_custom(m: Manifest) -> None:
    """Objects of APIs kubernetes-validate does not know: our CRD's, Prometheus's."""
    if m["apiVersion"] == "parley.dev/v1alpha1":
        assert m["kind"] in CRD_FILES, m["kind"]
        jsonschema.validate(m, _crd_schema(m["kind"]), cls=jsonschema.Draft7Validator)
    elif m["apiVersion"] == PROMETHEUS_API and m["kind"] == "PrometheusRule":
        groups = m["spec"]["groups"]
        assert groups and all(g["name"] and g["rules"] for g in groups)
        for rule in (r for g in groups for r in g["rules"]):
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["alert"] and rule["expr"] and rule["labels"]["severity"]
            assert rule["annotations"]["runbook_url"].startswith("http")
    elif m["apiVersion"] == PROMETHEUS_API:
        assert m["kind"] in ("ServiceMonitor", "PodMonitor"), m["kind"]
        spec = m["spec"]
        assert spec["selector"]["matchLabels"]
        endpoints = spec.get("endpoints") or spec.get("podMetricsEndpoints")
        assert endpoints and all(e["port"] == "http" and e["path"] == "/metrics" for e in endpoints)
    else:
        raise AssertionError(f"no schema for {m['apiVersion']} {m['kind']}")


def test_helm_lint_default_and_ci_values(helm: str) -> None:
    for values in VALUES:
        args = ["lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION]
        if values:
            args += ["--values", str(values)]
        proc = run_helm(helm, *args)
        assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.parametrize("values", VALUES, ids=values_ids)
def test_template_every_object_valid(render: Any, values: Path | None) -> None:
    manifests = render(values, "--api-versions", PROMETHEUS_API)
    assert manifests
    errors = []
    for m in manifests:
        name = f"{m['kind']}/{m['metadata']['name']}"
        try:
            if m["apiVersion"] in ("parley.dev/v1alpha1", PROMETHEUS_API):
                _validate_custom(m)
            else:
                kubernetes_validate.validate(m, KUBE_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError,
                AssertionError) as exc:
            errors.append(f"{name}: {exc}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("values", VALUES, ids=values_ids)
def test_template_names_unique_and_namespaced(render: Any, values: Path | None) -> None:
    manifests = render(values)
    keys = [(m["kind"], m["metadata"]["name"]) for m in manifests]
    assert len(keys) == len(set(keys))
    cluster_scoped = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for m in manifests:
        assert len(m["metadata"]["name"]) <= 63, m["metadata"]["name"]
        if m["kind"] not in cluster_scoped:
            assert m["metadata"]["namespace"] == "parley", m["metadata"]["name"]


def test_template_default_has_every_component(render: Any) -> None:
    manifests = render()
    kinds: dict[str, set[str]] = {}
    for m in manifests:
        component = m["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")
        kinds.setdefault(m["kind"], set()).add(component)
    services = {"rooms", "signaling", "metrics", "logpurge"}
    assert kinds["Deployment"] == services | {"operator"}
    assert kinds["StatefulSet"] == {"nats", "redis"}
    assert services <= kinds["Service"]
    assert kinds["HorizontalPodAutoscaler"] == {"rooms", "signaling", "metrics"}
    assert kinds["PodDisruptionBudget"] == services | {"relay"}
    assert kinds["RelayPool"] == {"relay"}
    assert kinds["CustomResourceDefinition"] == {"crd"}
    for component in services | {"operator", "nats", "redis", "relay"}:
        assert component in kinds["NetworkPolicy"], component


def test_template_servicemonitors_only_with_prometheus_api(render: Any) -> None:
    without = {m["kind"] for m in render()}
    assert not without & {"ServiceMonitor", "PodMonitor"}
    with_api = [m["kind"] for m in render(None, "--api-versions", PROMETHEUS_API)]
    assert with_api.count("ServiceMonitor") == 4
    assert with_api.count("PodMonitor") == 1


def test_template_ingress_routes(render: Any) -> None:
    (ingress,) = [m for m in render(CHART / "ci" / "ingress-tls-values.yaml")
                  if m["kind"] == "Ingress"]
    rule = ingress["spec"]["rules"][0]
    routes = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    assert routes == {"/ws": "parley-signaling", "/beacon": "parley-metrics",
                      "/reports": "parley-metrics", "/stats.json": "parley-metrics",
                      "/": "parley-rooms"}
    assert rule["host"] == "meet.example.org"
    assert ingress["spec"]["tls"] == [{"hosts": ["meet.example.org"],
                                       "secretName": "parley-tls"}]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"


def test_template_external_services_replace_bundled(render: Any) -> None:
    manifests = render(CHART / "ci" / "external-services-values.yaml")
    assert not [m for m in manifests if m["kind"] == "StatefulSet"]
    (conn,) = [m for m in manifests if m["metadata"]["name"] == "parley-connections"]
    assert base64.b64decode(conn["data"]["redisUrl"]).decode().startswith("rediss://")
    policies = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "NetworkPolicy"}
    ports = {p["port"] for rule in policies["parley-rooms"]["spec"]["egress"]
             for p in rule["ports"]}
    assert ports == {4222, 4223, 6380}


def test_template_relaypool_follows_values(render: Any) -> None:
    (pool,) = [m for m in render(CHART / "ci" / "nodeport-relays-values.yaml")
               if m["kind"] == "RelayPool"]
    spec = pool["spec"]
    assert spec["exposure"]["mode"] == "NodePort"
    assert spec["ports"]["tls"] == 5349
    assert spec["replicas"] == {"min": 2, "max": 6}
    assert spec["secretName"] == "parley-turn"
    assert spec["image"].startswith("ghcr.io/parley/parley:")


def test_template_operator_rbac_is_namespaced_and_read_only_cluster_wide(render: Any) -> None:
    default = render()
    (cluster_role,) = [m for m in default if m["kind"] == "ClusterRole"]
    for rule in cluster_role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
    assert not any("nodes" in r["resources"] for r in cluster_role["rules"])
    hostnet = render(CHART / "ci" / "hostnetwork-relays-values.yaml")
    (cluster_role,) = [m for m in hostnet if m["kind"] == "ClusterRole"]
    assert any("nodes" in r["resources"] for r in cluster_role["rules"])
    (role,) = [m for m in default if m["kind"] == "Role"]
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
    (deploy,) = [m for m in default if m["kind"] == "Deployment"
                 and m["metadata"]["name"] == "parley-operator"]
    assert "--standalone" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert deploy["spec"]["strategy"]["type"] == "Recreate"


def _env_of(manifests: tuple[Manifest, ...], component: str) -> dict[str, Any]:
    (dep,) = [m for m in manifests if m["kind"] == "Deployment"
              and m["metadata"]["name"].endswith(f"-{component}")]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_template_security_contact_passed_only_when_set(render: Any) -> None:
    assert "PARLEY_SECURITY_CONTACT" not in _env_of(render(), "rooms")
    env = _env_of(render(None, "--set", "config.securityContact=security@example.org"), "rooms")
    assert env["PARLEY_SECURITY_CONTACT"] == "security@example.org"


def test_template_rooms_reads_the_allowed_origins(render: Any) -> None:
    env = _env_of(render(None, "--set", "signaling.allowedOrigins={https://a.example}"), "rooms")
    assert env["PARLEY_ALLOWED_ORIGINS"] == "https://a.example"
