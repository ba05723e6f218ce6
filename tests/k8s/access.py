"""The operator's identity on a real API server, exactly as the chart grants it: its
ServiceAccount, Role, ClusterRole and bindings rendered from charts/parley and applied into
a fresh namespace, and a kubeconfig that holds only that ServiceAccount's token (so the
operator, run out of cluster, has its in-cluster rights and nothing more)."""

from __future__ import annotations

import json
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.k8s.controlplane import ROOT, ControlPlane, kubeconfig_text

CHART: Final = ROOT / "charts" / "parley"
CRD: Final = CHART / "crds" / "relaypools.parley.dev.yaml"
SFU_CRD: Final = CHART / "crds" / "sfupools.parley.dev.yaml"
RELEASE: Final = "parley"
RBAC_TEMPLATES: Final = ("operator-serviceaccount.yaml", "operator-role.yaml",
                         "operator-rolebinding.yaml", "operator-clusterrole.yaml")


@dataclass(frozen=True)
class OperatorAccess:
    """A namespace with the chart's operator RBAC, and the operator's own kubeconfig."""

    namespace: str
    service_account: str
    kubeconfig: Path
    turn_secret: str  # the one Secret the operator may read and rotate

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def helm_path() -> str:
    """The pinned helm (tools/helm.sh), found once per session by the chart tests' helper."""
    from tests.chart.conftest import _helm_path

    path = _helm_path()
    if path.startswith("!"):
        raise AssertionError(f"no helm: {path[1:]}")
    return path


def apply_crd(plane: ControlPlane) -> None:
    """Install the RelayPool and SfuPool CRDs (server-side apply, idempotent) and wait
    until served."""
    for args in (("apply", "--server-side", "-f", str(CRD), "-f", str(SFU_CRD)),
                 ("wait", "--for=condition=Established", "--timeout=60s",
                  "crd/relaypools.parley.dev", "crd/sfupools.parley.dev")):
        out = plane.kubectl(*args)
        if out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr}")


def operator_access(plane: ControlPlane, directory: Path) -> OperatorAccess:
    """A fresh namespace holding the chart's operator RBAC; a token kubeconfig for it."""
    apply_crd(plane)
    ns = f"op-{secrets.token_hex(3)}"
    out = plane.kubectl("create", "namespace", ns)
    assert out.returncode == 0, out.stderr
    show = [arg for t in RBAC_TEMPLATES for arg in ("--show-only", f"templates/{t}")]
    # HostNetwork grants the node reads too (the tests use every exposure mode); sfu.enabled
    # the SfuPools
    rendered = subprocess.run(
        [helm_path(), "template", RELEASE, str(CHART), "--namespace", ns,
         "--set", "relays.exposure.mode=HostNetwork", "--set", "sfu.enabled=true", *show],
        capture_output=True, text=True, check=True).stdout
    out = plane.kubectl("apply", "-n", ns, "-f", "-", input=rendered)
    assert out.returncode == 0, out.stderr
    sa = plane.kubectl("get", "serviceaccounts", "-n", ns, "-l",
                       "app.kubernetes.io/component=operator", "-o",
                       "jsonpath={.items[0].metadata.name}").stdout.strip()
    assert sa, "the chart made no operator ServiceAccount"
    token = plane.kubectl("create", "token", sa, "-n", ns, "--duration", "2h")
    assert token.returncode == 0, token.stderr
    admin = json.loads(plane.kubeconfig.read_text())
    server = admin["clusters"][0]["cluster"]["server"]
    ca = (plane.dir / "pki" / "ca.crt").read_bytes()
    path = directory / f"{ns}-operator.kubeconfig"
    path.write_text(kubeconfig_text(server, ca, user=sa, token=token.stdout.strip(),
                                    namespace=ns))
    path.chmod(0o600)
    turn_secret = subprocess.run(
        [helm_path(), "template", RELEASE, str(CHART), "--namespace", ns,
         "--show-only", "templates/relay-relaypool.yaml"],
        capture_output=True, text=True, check=True).stdout
    name = next(line.split(":", 1)[1].strip() for line in turn_secret.splitlines()
                if line.strip().startswith("secretName:"))
    return OperatorAccess(namespace=ns, service_account=sa, kubeconfig=path, turn_secret=name)


def can_i(plane: ControlPlane, access: OperatorAccess, *args: str) -> bool:
    """`kubectl auth can-i ARGS --as=<the operator's ServiceAccount>`."""
    out = plane.kubectl("auth", "can-i", *args, f"--as={access.user}")
    return out.stdout.strip() == "yes"
