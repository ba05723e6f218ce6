"""The RelayPool CRD as a real API server enforces it: schema and CEL rules reject bad
pools with the rule's message, `kubectl scale` works through the scale subresource, and
`kubectl get relaypools` shows the printer columns."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any, Final

import pytest

from tests.k8s.controlplane import ROOT, ControlPlane

pytestmark = pytest.mark.k8s

CRD: Final = ROOT / "charts" / "parley" / "crds" / "relaypools.parley.dev.yaml"


@pytest.fixture(scope="module")
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    ns = f"crd-{secrets.token_hex(3)}"
    out = control_plane.kubectl("apply", "--server-side", "-f", str(CRD))
    assert out.returncode == 0, out.stderr
    out = control_plane.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                                "crd/relaypools.parley.dev")
    assert out.returncode == 0, out.stderr
    assert control_plane.kubectl("create", "namespace", ns).returncode == 0
    yield ns
    control_plane.kubectl("delete", "namespace", ns, "--wait=false")


def _pool(name: str, spec: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "parley.dev/v1alpha1", "kind": "RelayPool",
                       "metadata": {"name": name}, "spec": {"image": "parley:test", **spec}})


@pytest.mark.parametrize(("spec", "message"), [
    ({"replicas": {"min": 5, "max": 2}}, "replicas.min must not exceed replicas.max"),
    ({"ports": {"relayMin": 50000, "relayMax": 49152}},
     "ports.relayMin must not exceed ports.relayMax"),
    ({"exposure": {"mode": "Ingress"}}, 'Unsupported value: "Ingress"'),
    ({"ports": {"relayMin": 80}}, "should be greater than or equal to 1024"),
    ({"replicas": {"max": 0}}, "should be greater than or equal to 1"),
    ({"unknownField": 1}, 'unknown field "spec.unknownField"'),
    ({"secretName": "Not_A_Name"}, "spec.secretName"),
    ({"exposure": {"mode": "NodePort"}, "ports": {"workerBase": 40000}},
     "ports.workerBase needs exposure.mode LoadBalancer or HostNetwork, not NodePort"),
    ({"ports": {"workerBase": 49152}},
     "ports.workerBase must lie outside ports.relayMin to ports.relayMax"),
], ids=["min-over-max", "relay-range-inverted", "exposure-enum", "relay-port-floor",
        "max-zero", "unknown-field", "secret-name-pattern", "worker-ports-node-port",
        "worker-ports-in-relay-range"])
def test_crd_rejects_invalid_pool_with_rule_message(
    control_plane: ControlPlane, namespace: str, spec: dict[str, Any], message: str,
) -> None:
    out = control_plane.kubectl("apply", "-n", namespace, "-f", "-",
                                input=_pool(f"bad-{secrets.token_hex(3)}", spec))
    assert out.returncode != 0, f"the API server accepted {spec}"
    assert message in out.stderr, out.stderr


def test_crd_scale_subresource_sets_desired(control_plane: ControlPlane, namespace: str) -> None:
    out = control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=_pool(
        "scaled", {"replicas": {"min": 1, "max": 8}}))
    assert out.returncode == 0, out.stderr
    out = control_plane.kubectl("scale", "-n", namespace, "relaypool/scaled", "--replicas", "4")
    assert out.returncode == 0, out.stderr
    got = control_plane.kubectl("get", "-n", namespace, "relaypool/scaled", "-o",
                                "jsonpath={.spec.replicas.desired}")
    assert got.stdout == "4"
    scale = control_plane.kubectl("get", "--raw", f"/apis/parley.dev/v1alpha1/namespaces/"
                                  f"{namespace}/relaypools/scaled/scale")
    assert json.loads(scale.stdout)["spec"]["replicas"] == 4


def test_crd_printer_columns(control_plane: ControlPlane, namespace: str) -> None:
    out = control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=_pool(
        "shown", {"replicas": {"min": 2, "max": 6}}))
    assert out.returncode == 0, out.stderr
    table = control_plane.kubectl("get", "-n", namespace, "relaypool/shown", "-o", "wide")
    header, row = table.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "MIN", "MAX", "READY", "DRAINING", "ALLOCATIONS",
                              "EXPOSURE", "AVAILABLE", "PROBE", "AGE"]
    assert row.split()[:3] == ["shown", "2", "6"]
