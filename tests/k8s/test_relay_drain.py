"""Drain on scale-down against a real API server, with real relays.

The operator runs out of cluster as its own process (`parley operator run`) with only its
ServiceAccount's token. KWOK runs the relay pods on paper; the relays themselves are real
`parley relay` processes, started with each pod's environment (addresses and ports moved
to free loopback ones), heartbeating on this session's NATS. One relay carries live TURN
allocations; scaling the pool down by one drains the other (the least loaded) over NATS,
then deletes its pod once it is empty, and never touches the busy one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from parley_operator.manifests import LABEL_POOL
from services.common.credentials import mint_turn_credential
from services.common.infra import NatsServer, free_port
from services.common.bus import Envelope, NatsBus
from services.common.messages import RelayHeartbeat
from services.common.subjects import relay_heartbeat
from tests.k8s.access import OperatorAccess, operator_access
from tests.k8s.controlplane import ControlPlane
from tests.procs import wait_http

pytestmark = pytest.mark.k8s


async def eventually(check: Callable[[], Any], *, within: float = 60, what: str = "") -> Any:
    """Poll `check` (run in a thread: it may call kubectl) until it returns something truthy."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(0.3)
    raise AssertionError(f"not reached within {within}s: {what} (last: {last!r})")


class Processes:
    """Child processes with their output in files; all stopped at the end."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.children: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.dir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env={**os.environ, **env})
        self.children[name] = (proc, log)
        return proc

    def output(self, name: str) -> str:
        return self.children[name][1].read_text(errors="replace")

    def stop_all(self) -> None:
        for proc, _ in self.children.values():
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in self.children.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    p = Processes(tmp_path)
    yield p
    p.stop_all()


@pytest.fixture
def access(control_plane: ControlPlane, tmp_path: Path) -> Iterator[OperatorAccess]:
    granted = operator_access(control_plane, tmp_path)
    yield granted
    control_plane.kubectl("delete", "namespace", granted.namespace, "--wait=false")


def _json(plane: ControlPlane, *args: str) -> Any:
    out = plane.kubectl(*args, "-o", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _live_pods(plane: ControlPlane, ns: str, pool: str) -> list[dict[str, Any]]:
    items = _json(plane, "get", "pods", "-n", ns, "-l", f"{LABEL_POOL}={pool}")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def _relay_env(pod: dict[str, Any], secret_file: Path, ports: str) -> tuple[dict[str, str], int]:
    """The pod's environment for a local process: fields resolved to loopback, listening
    ports moved to free ones (both relays share this host)."""
    (container,) = pod["spec"]["containers"]
    env: dict[str, str] = {}
    for item in container["env"]:
        env[item["name"]] = item.get("value") or "127.0.0.1"  # status.podIP / status.hostIP
    http_port = free_port()
    env.update({"PARLEY_RELAY_LISTEN": f"127.0.0.1:{free_port(udp_too=True)}",
                "PARLEY_RELAY_HTTP_PORT": str(http_port), "PARLEY_RELAY_PORTS": ports,
                "PARLEY_RELAY_SECRET_FILE": str(secret_file),
                "PARLEY_RELAY_ALLOW_PEER": "127.0.0.1/32"})
    return env, http_port


async def _hold_allocations(server: tuple[str, int], secret: str, n: int,
                            release: asyncio.Event) -> None:
    from aioice.turn import create_turn_endpoint

    transports = []
    for _ in range(n):
        cred = mint_turn_credential(secret, ttl=600)
        transport, _ = await create_turn_endpoint(
            asyncio.DatagramProtocol, server_addr=server, username=cred.username,
            password=cred.password, transport="udp")
        transports.append(transport)
    await release.wait()
    for t in transports:
        t.close()
    await asyncio.sleep(0.5)  # let the deallocations go out


async def test_scale_down_drains_least_loaded_real_relay_then_deletes_it(
    control_plane: ControlPlane, access: OperatorAccess, nats_server: NatsServer,
    procs: Processes, tmp_path: Path,
) -> None:
    ns, pool = access.namespace, f"relays-{secrets.token_hex(2)}"
    procs.start("operator", [sys.executable, "-m", "services", "operator", "run",
                             "--namespace", ns, "--nats-url", nats_server.url,
                             "--interval", "1"],
                {"KUBECONFIG": str(access.kubeconfig), "PYTHONUNBUFFERED": "1"})
    manifest = {"apiVersion": "parley.dev/v1alpha1", "kind": "RelayPool",
                "metadata": {"name": pool, "namespace": ns}, "spec": {
                    "image": "parley:test", "secretName": access.turn_secret,
                    "replicas": {"min": 1, "max": 3, "desired": 2},
                    "exposure": {"mode": "HostNetwork"},
                    "scaling": {"scaleDownStabilizationSeconds": 0, "maxScaleDownPerMinute": 1},
                    # the pods' node address is KWOK's: a WebRTC probe cannot reach it here
                    "probe": {"intervalSeconds": 3600, "failureThreshold": 1000}}}
    out = control_plane.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    assert out.returncode == 0, out.stderr
    # a second pool, never started (no cloud gives its Service an address): its Service
    # carries the worker ports of `ports.workerBase`, one per worker of a 2-core relay
    wp_pool = f"wp-{secrets.token_hex(2)}"
    out = control_plane.kubectl("apply", "-f", "-", input=json.dumps({
        **manifest, "metadata": {"name": wp_pool, "namespace": ns}, "spec": {
            "image": "parley:test", "secretName": access.turn_secret,
            "replicas": {"min": 1, "max": 1}, "exposure": {"mode": "LoadBalancer"},
            "ports": {"workerBase": 40000}, "resources": {"limits": {"cpu": "2"}},
            "probe": {"intervalSeconds": 3600, "failureThreshold": 1000}}}))
    assert out.returncode == 0, out.stderr
    pods = await eventually(lambda: (lambda p: p if len(p) == 2 else None)(
        _live_pods(control_plane, ns, pool)), what="two relay pods")

    secret = _json(control_plane, "get", "secret", access.turn_secret, "-n", ns)
    secret_text = base64.b64decode(secret["data"]["secret-file"]).decode()
    current = secret_text.splitlines()[0]
    secret_file = tmp_path / "turn.secrets"
    await asyncio.to_thread(secret_file.write_text, secret_text)

    beats: dict[str, RelayHeartbeat] = {}

    async def on_beat(env: Envelope) -> None:
        hb = RelayHeartbeat.model_validate_json(env.data)
        beats[hb.relay_id] = hb

    bus = await NatsBus.connect(nats_server.url, name="test-heartbeats")
    await bus.subscribe(relay_heartbeat("any").rsplit(".", 1)[0] + ".*", on_beat)
    listen: dict[str, tuple[str, int]] = {}
    base = 40000 + secrets.randbelow(5000)
    for i, pod in enumerate(pods):
        name = pod["metadata"]["name"]
        env, http_port = _relay_env(pod, secret_file, f"{base + i * 100}-{base + i * 100 + 99}")
        proc = procs.start(name, [sys.executable, "-m", "services", "relay"], env)
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{http_port}/readyz", proc,
                                timeout=30)
        host, port = env["PARLEY_RELAY_LISTEN"].rsplit(":", 1)
        listen[name] = (host, int(port))
    busy, quiet = sorted(listen)

    release = asyncio.Event()
    holder = asyncio.create_task(_hold_allocations(listen[busy], current, 2, release))
    try:
        await eventually(lambda: busy in beats and beats[busy].allocations == 2,
                         what="the busy relay reports its two allocations")

        def ready() -> bool:
            status = _json(control_plane, "get", "relaypool", pool, "-n", ns).get("status", {})
            return status.get("readyReplicas") == 2 and status.get("allocations") == 2

        await eventually(ready, what="the pool sees both relays and their load")
        out = control_plane.kubectl("scale", "-n", ns, f"relaypool/{pool}", "--replicas", "1")
        assert out.returncode == 0, out.stderr

        await eventually(lambda: quiet in beats and beats[quiet].draining,
                         what="the least-loaded relay drains (it says so in its heartbeat)")
        await eventually(lambda: [p["metadata"]["name"] for p in
                                  _live_pods(control_plane, ns, pool)] == [busy],
                         what="the drained, empty relay's pod is deleted")
        assert not beats[busy].draining, "the busy relay was drained"
        assert beats[busy].allocations == 2, "the busy relay lost its calls"
    finally:
        release.set()
        await asyncio.wait_for(holder, 10)
        await bus.close()
    services = await eventually(lambda: _json(control_plane, "get", "services", "-n", ns, "-l",
                                              f"{LABEL_POOL}={wp_pool}")["items"],
                                what="the worker-port pool's Service")
    assert [(p["name"], p["protocol"], p["port"]) for p in services[0]["spec"]["ports"]] == [
        ("turn-udp", "UDP", 3478), ("turn-tcp", "TCP", 3478),
        ("worker0-udp", "UDP", 40000), ("worker0-tcp", "TCP", 40000),
        ("worker1-udp", "UDP", 40001), ("worker1-tcp", "TCP", 40001)]
    log = procs.output("operator")
    assert "403" not in log and "Forbidden" not in log, log[-3000:]
