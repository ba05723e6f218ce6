"""What the chart's RBAC lets the operator do, asked of a real API server with
`kubectl auth can-i --as=system:serviceaccount:<ns>:<operator>`: everything it needs in its
own namespace, and nothing outside it (the operator tests in tests/integration/operator run
it with exactly these rights and check that its log has no 403)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s.access import OperatorAccess, can_i, operator_access
from tests.k8s.controlplane import ControlPlane

pytestmark = pytest.mark.k8s


@pytest.fixture(scope="module")
def access(control_plane: ControlPlane,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorAccess]:
    granted = operator_access(control_plane, tmp_path_factory.mktemp("rbac"))
    other = f"{granted.namespace}-other"
    assert control_plane.kubectl("create", "namespace", other).returncode == 0
    yield granted
    for ns in (granted.namespace, other):
        control_plane.kubectl("delete", "namespace", ns, "--wait=false")


@pytest.mark.parametrize("verb_resource", [
    ("watch", "relaypools.parley.dev"), ("patch", "relaypools.parley.dev --subresource=status"),
    ("create", "pods"), ("delete", "pods"), ("list", "services"), ("create", "services"),
    ("create", "secrets"), ("create", "events"),
])
def test_operator_can_what_it_needs_in_its_namespace(
    control_plane: ControlPlane, access: OperatorAccess, verb_resource: tuple[str, str],
) -> None:
    verb, resource = verb_resource
    assert can_i(control_plane, access, verb, *resource.split(), "-n", access.namespace)


def test_operator_can_rotate_its_turn_secret_only(
    control_plane: ControlPlane, access: OperatorAccess,
) -> None:
    ns = ["-n", access.namespace]
    assert can_i(control_plane, access, "patch", f"secrets/{access.turn_secret}", *ns)
    assert can_i(control_plane, access, "get", f"secrets/{access.turn_secret}", *ns)
    for other in ("parley-keys", "parley-connections"):  # the chart's other Secrets
        assert not can_i(control_plane, access, "get", f"secrets/{other}", *ns)
    assert not can_i(control_plane, access, "list", "secrets", *ns)


@pytest.mark.parametrize("verb_resource", [
    ("get", "secrets"), ("list", "secrets"), ("get", "pods"), ("list", "pods"),
    ("create", "pods"), ("watch", "relaypools.parley.dev"),
])
def test_operator_cannot_reach_other_namespaces(
    control_plane: ControlPlane, access: OperatorAccess, verb_resource: tuple[str, str],
) -> None:
    verb, resource = verb_resource
    other = f"{access.namespace}-other"
    assert not can_i(control_plane, access, verb, resource, "-n", other)
    assert not can_i(control_plane, access, verb, resource, "--all-namespaces")


def test_operator_cluster_rights_are_read_only_and_no_exec(
    control_plane: ControlPlane, access: OperatorAccess,
) -> None:
    assert can_i(control_plane, access, "list", "customresourcedefinitions")
    assert not can_i(control_plane, access, "create", "customresourcedefinitions")
    assert not can_i(control_plane, access, "patch", "nodes")
    assert not can_i(control_plane, access, "create", "clusterrolebindings")
    assert not can_i(control_plane, access, "create", "pods", "--subresource=exec",
                     "-n", access.namespace)


def test_operator_kubeconfig_holds_only_its_token(access: OperatorAccess) -> None:
    text = Path(access.kubeconfig).read_text()
    assert '"token"' in text and "client-key-data" not in text
