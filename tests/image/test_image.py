"""The built image (`make image`, localhost/parley:dev), run the way the chart runs it.

Each service's container arguments and environment come from the rendered chart (the
relay's from the operator's pod builder); the container runs as UID 10001 with a read-only
root filesystem, a tmpfs /tmp, no capabilities and no privilege escalation, on the host's
network so that it reaches the NATS and Redis this test session started. Skipped when
podman or the image is missing (`.ci/run` builds it first).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from parley_operator.manifests import SECRET_DIR, build_relay_pod_spec
from parley_operator.pool import PoolRef, parse_pool_spec
from services.common.credentials import mint_turn_credential
from services.common.infra import NatsServer, RedisServer, free_port
from tests.chart.conftest import _render
from tests.k8s.access import helm_path
from tests.k8s.controlplane import ROOT

pytestmark = pytest.mark.image

IMAGE: Final = os.environ.get("PARLEY_IMAGE", "localhost/parley:dev")
CONTAINERS_CONF: Final = ROOT / "tools" / "image" / "containers.conf"
HARDENING: Final = ["--runtime", "runc", "--network", "host", "--user", "10001:10001",
                    "--read-only", "--tmpfs", "/tmp:rw,size=64m,mode=1777",
                    "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]


def _podman(*args: str, check: bool = True, timeout: float = 120) -> str:
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


@pytest.fixture(scope="module")
def image() -> str:
    # .ci/run builds the image first and sets PARLEY_IMAGE_REQUIRED=1: there a missing image
    # is a failure, not a skip
    missing = pytest.fail if os.environ.get("PARLEY_IMAGE_REQUIRED") == "1" else pytest.skip
    if shutil.which("podman") is None:
        missing("podman is not installed (apt-get install podman runc)")
    if subprocess.run(["podman", "image", "exists", IMAGE], check=False,
                      env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}).returncode:
        missing(f"{IMAGE} is not built (make image)")
    return IMAGE


@pytest.fixture(scope="module")
def chart_containers() -> dict[str, dict[str, Any]]:
    """The parley container of each Deployment the default values render, by component
    (rendered as the chart tests render it)."""
    found: dict[str, dict[str, Any]] = {}
    for doc in _render(helm_path(), None, ()):
        if doc["kind"] == "Deployment":
            for c in doc["spec"]["template"]["spec"]["containers"]:
                found[c["name"]] = c
    return found


class Containers:
    """Containers started by a test, removed at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.names: list[str] = []

    def run(self, image: str, args: list[str], env: dict[str, str],
            mounts: dict[str, Path] | None = None) -> str:
        name = f"parley-smoke-{secrets.token_hex(4)}"
        argv = ["run", "-d", "--name", name, *HARDENING]
        for key, value in env.items():
            argv += ["--env", f"{key}={value}"]
        for target, source in (mounts or {}).items():
            argv += ["--volume", f"{source}:{target}:ro,Z"]
        _podman(*argv, image, *args)
        self.names.append(name)
        return name

    def logs(self, name: str) -> str:
        return _podman("logs", name, check=False)

    def remove_all(self) -> None:
        for name in self.names:
            _podman("rm", "--force", "--time", "2", name, check=False)


@pytest.fixture
def containers(tmp_path: Path) -> Iterator[Containers]:
    c = Containers(tmp_path)
    yield c
    c.remove_all()


def _resolve_env(container: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """The container's environment with Secret and field references replaced by `values`."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]
        key = (ref.get("secretKeyRef") or {}).get("key") or ref.get("fieldRef", {})["fieldPath"]
        # each component has its own NATS and Redis user (<component>NatsUrl): this
        # session's servers take any
        for suffix in ("NatsUrl", "RedisUrl"):
            if key.endswith(suffix):
                key = suffix[0].lower() + suffix[1:]
        env[item["name"]] = values[key]
    return env


def _with_port(args: list[str], port: int) -> list[str]:
    out = list(args)
    out[out.index("--port") + 1] = str(port)
    return out


def _wait_ready(url: str, containers: Containers, name: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        state = _podman("inspect", name, "--format", "{{.State.Status}}", check=False).strip()
        if state not in ("running", "created", "configured"):
            break
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready ({last}); container log:\n{containers.logs(name)}")


@pytest.fixture
def backing(nats_server: NatsServer, redis_server: RedisServer) -> dict[str, str]:
    """The Secret and field values the chart would give: this session's NATS and Redis."""
    return {
        "natsUrl": nats_server.url, "redisUrl": redis_server.url,
        "hashKey": secrets.token_urlsafe(32), "tokenKey": secrets.token_urlsafe(32),
        "logpurgeAdminKey": secrets.token_urlsafe(24),
        "metricsApiKeys": json.dumps([secrets.token_urlsafe(24)]),
        "metadata.namespace": "parley",
    }


@pytest.mark.parametrize("component", ["rooms", "signaling", "metrics", "logpurge"])
def test_image_service_ready_as_chart_runs_it(
    image: str, chart_containers: dict[str, dict[str, Any]], containers: Containers,
    backing: dict[str, str], tmp_path: Path, component: str,
) -> None:
    if component == "rooms":  # as in the chart, logpurge makes the diagnostic log rooms writes
        lp, lp_port = chart_containers["logpurge"], free_port()
        lp_name = containers.run(image, _with_port(lp["args"], lp_port), _resolve_env(lp, backing))
        _wait_ready(f"http://127.0.0.1:{lp_port}/readyz", containers, lp_name)
    spec = chart_containers[component]
    port = free_port()
    env = _resolve_env(spec, backing)
    mounts: dict[str, Path] = {}
    for mount in spec.get("volumeMounts", []):
        if mount["mountPath"] == SECRET_DIR:  # rooms reads the TURN secret from a file
            secret_dir = tmp_path / "turn"
            secret_dir.mkdir()
            (secret_dir / "current").write_text(secrets.token_urlsafe(24))
            secret_dir.chmod(0o755)
            (secret_dir / "current").chmod(0o644)
            mounts[SECRET_DIR] = secret_dir
    name = containers.run(image, _with_port(spec["args"], port), env, mounts)
    _wait_ready(f"http://127.0.0.1:{port}/readyz", containers, name)
    user = _podman("exec", name, "id", "-u").strip()
    assert user == "10001"
    probe = _podman("exec", name, "sh", "-c", "touch /opt/parley/x 2>&1; echo $?", check=False)
    assert probe.strip().endswith("1"), "the root filesystem must be read-only"


def test_image_relay_grants_turn_allocation(
    image: str, containers: Containers, nats_server: NatsServer, tmp_path: Path,
) -> None:
    listen, http_port, low = free_port(udp_too=True), free_port(), 42000 + secrets.randbelow(8000)
    spec, extras = parse_pool_spec({"image": image, "ports": {
        "listen": listen, "relayMin": low, "relayMax": low + 50}})
    pod = build_relay_pod_spec(PoolRef("smoke", "parley"), spec, extras, relay_id="smoke-0",
                               secret="turn", nats_url=nats_server.url,
                               public_host="127.0.0.1")
    (container,) = pod["spec"]["containers"]
    env = _resolve_env(container, {"status.podIP": "127.0.0.1"})
    env["PARLEY_RELAY_HTTP_PORT"] = str(http_port)
    env["PARLEY_RELAY_ALLOW_PEER"] = "127.0.0.1/32"
    secret = secrets.token_urlsafe(24)
    secret_dir = tmp_path / "turn"
    secret_dir.mkdir()
    (secret_dir / "secrets").write_text(f"{secret}\n{secret}\n")
    secret_dir.chmod(0o755)
    (secret_dir / "secrets").chmod(0o644)
    command = container["command"]
    assert command[0] == "parley"
    name = containers.run(image, command[1:], env, {SECRET_DIR: secret_dir})
    _wait_ready(f"http://127.0.0.1:{http_port}/readyz", containers, name)

    async def allocate() -> tuple[str, int]:
        from aioice.turn import create_turn_endpoint

        cred = mint_turn_credential(secret, ttl=600)
        transport, _ = await create_turn_endpoint(
            asyncio.DatagramProtocol, server_addr=("127.0.0.1", listen),
            username=cred.username, password=cred.password, transport="udp")
        relayed: tuple[str, int] = transport.get_extra_info("sockname")
        transport.close()
        return relayed

    host, port = asyncio.run(asyncio.wait_for(allocate(), 20))
    assert host == "127.0.0.1" and low <= port <= low + 50


def test_image_operator_help(image: str) -> None:
    out = _podman("run", "--rm", *HARDENING, image, "operator", "--help")
    assert "run" in out


def test_image_relay_has_its_compiled_packet_path(image: str) -> None:
    """The wheel built on the host carries the relay's C extension, and it loads in the
    image's Python (a glibc or ABI mismatch would silently fall back to pure Python)."""
    out = _podman("run", "--rm", *HARDENING, "--entrypoint", "/opt/parley/bin/python", image,
                  "-c", "from services.relay import fastpath; print(fastpath.load() is not None)")
    assert out.strip().splitlines()[-1] == "True", out
