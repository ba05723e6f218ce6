"""`relays.ports.workerBase`: the chart passes it to its RelayPool, opens the worker ports
in the relay NetworkPolicy (one per relay worker, counted from the CPU limit as the operator
counts them), and refuses what the operator would refuse, naming it."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from tests.chart.conftest import CHART, KUBE_VERSION, Manifest, run_helm

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate",
    reason="kubernetes-validate is not installed (pip install kubernetes-validate)",
)

CRD_FILE = CHART / "crds" / "relaypools.parley.dev.yaml"
ON = ("--set", "relays.ports.workerBase=40000")


def _one(manifests: tuple[Manifest, ...], kind: str, name: str | None = None) -> Manifest:
    (found,) = [m for m in manifests if m["kind"] == kind
                and (name is None or m["metadata"]["name"] == name)]
    return found


def _client_ports(policy: Manifest) -> set[tuple[str, int, int | None]]:
    first = policy["spec"]["ingress"][0]
    return {(p["protocol"], p["port"], p.get("endPort")) for p in first["ports"]}


def test_worker_ports_reach_the_relaypool_and_the_network_policy(render: Any) -> None:
    manifests = render(None, *ON, "--set-string", "relays.resources.limits.cpu=2500m")
    pool = _one(manifests, "RelayPool")
    assert pool["spec"]["ports"]["workerBase"] == 40000
    crd = yaml.safe_load(CRD_FILE.read_text())
    (version,) = crd["spec"]["versions"]
    jsonschema.validate(pool, version["schema"]["openAPIV3Schema"],
                        cls=jsonschema.Draft7Validator)
    policy = _one(manifests, "NetworkPolicy", "parley-relay")
    kubernetes_validate.validate(policy, KUBE_VERSION, strict=True)
    assert _client_ports(policy) == {("UDP", 3478, None), ("TCP", 3478, None),
                                     ("UDP", 40000, 40001), ("TCP", 40000, 40001)}


@pytest.mark.parametrize("extra", [(), ("--set", "relays.resources.limits.cpu=1")],
                         ids=["no-cpu-limit", "one-core"])
def test_worker_ports_one_worker_opens_nothing(render: Any, extra: tuple[str, ...]) -> None:
    manifests = render(None, *ON, *extra)
    assert _one(manifests, "RelayPool")["spec"]["ports"]["workerBase"] == 40000
    policy = _one(manifests, "NetworkPolicy", "parley-relay")
    assert _client_ports(policy) == {("UDP", 3478, None), ("TCP", 3478, None)}


def test_worker_ports_off_by_default(render: Any) -> None:
    assert "workerBase" not in _one(render(), "RelayPool")["spec"]["ports"]


@pytest.mark.parametrize(("args", "named"), [
    (["--set", "relays.exposure.mode=NodePort"],
     "relays.ports.workerBase needs relays.exposure.mode LoadBalancer or HostNetwork"),
    (["--set", "relays.ports.workerBase=65535"],
     "relays.ports.workerBase 65535-65536 ends past 65535"),
    (["--set", "relays.ports.workerBase=49151"],
     "relays.ports.workerBase 49151-49152 overlaps the relayed ports 49152-49999"),
    (["--set", "relays.ports.workerBase=3477"],
     "relays.ports.workerBase 3477-3478 includes relays.ports.listen 3478"),
    (["--set", "relays.resources.limits.cpu=65"],
     "relays.ports.workerBase allows at most 64 workers per relay"),
    (["--set", "relays.ports.workerBase=-1"], "/relays/ports/workerBase': minimum: got -1"),
], ids=["node-port", "past-65535", "over-relayed", "over-listen", "too-many-workers",
        "negative"])
def test_worker_ports_bad_values_fail_naming_them(
    helm: str, args: list[str], named: str
) -> None:
    proc = run_helm(helm, "template", "parley", str(CHART), *ON,
                    "--set", "relays.resources.limits.cpu=2", *args)
    assert proc.returncode != 0, f"helm template {args} succeeded"
    assert named in proc.stderr, proc.stderr
