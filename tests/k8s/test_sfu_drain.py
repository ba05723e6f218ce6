"""An SfuPool against a real API server, with real SFUs.

The operator runs out of cluster as its own process (`parley operator run --sfu-pools`) with
only its ServiceAccount's token, as the chart grants it with `sfu.enabled`. KWOK runs the
SFU pods on paper; the SFUs themselves are real `parley sfu` processes, started with each
pod's environment (the node address resolved to loopback, ports moved to free ones),
heartbeating on this session's NATS. Scaling the pool down by one drains one SFU over NATS
(`SfuControl`): that SFU, having no call, exits on its own; the operator deletes its pod
and its Service and leaves the other SFU alone.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.common.bus import Envelope, NatsBus
from services.common.infra import NatsServer, free_port
from services.common.messages import SfuHeartbeat
from services.common.subjects import SFU_HEARTBEATS
from tests.k8s.access import OperatorAccess
from tests.k8s.controlplane import ControlPlane
from tests.k8s.test_relay_drain import Processes, _json, _live_pods, eventually
from tests.k8s.test_relay_drain import access, procs  # noqa: F401  (fixtures)
from tests.procs import wait_http

pytestmark = pytest.mark.k8s

# the SFU is another part of the tree: this test runs where both are (after the merge)
pytest.importorskip("services.sfu.app", reason="services/sfu is not in this tree yet")


def _sfu_env(pod: dict[str, Any]) -> tuple[dict[str, str], int]:
    """The pod's environment for a local process: the node's address resolved to loopback,
    the UDP and HTTP ports moved to free ones (both SFUs share this host)."""
    (container,) = pod["spec"]["containers"]
    env = {item["name"]: item.get("value") or "127.0.0.1"  # status.hostIP
           for item in container["env"]}
    http_port = free_port()
    env.update({"PARLEY_SFU_LISTEN": f"127.0.0.1:{free_port(udp_too=True)}",
                "PARLEY_SFU_HTTP_PORT": str(http_port), "PARLEY_SFU_HEARTBEAT_INTERVAL": "0.5"})
    return env, http_port


async def test_scale_down_drains_a_real_sfu_which_exits_then_its_pod_and_service_go(
    control_plane: ControlPlane, access: OperatorAccess,  # noqa: F811
    nats_server: NatsServer, procs: Processes, tmp_path: Path,  # noqa: F811
) -> None:
    ns, pool = access.namespace, f"sfus-{secrets.token_hex(2)}"
    procs.start("operator", [sys.executable, "-m", "services", "operator", "run",
                             "--namespace", ns, "--nats-url", nats_server.url,
                             "--sfu-pools", "--interval", "1"],
                {"KUBECONFIG": str(access.kubeconfig), "PYTHONUNBUFFERED": "1"})
    manifest = {"apiVersion": "parley.dev/v1alpha1", "kind": "SfuPool",
                "metadata": {"name": pool, "namespace": ns}, "spec": {
                    "image": "parley:test", "replicas": {"min": 1, "max": 3, "desired": 2},
                    "exposure": {"mode": "NodePort"},
                    "scaling": {"scaleDownStabilizationSeconds": 0, "maxScaleDownPerMinute": 1}}}
    out = control_plane.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    assert out.returncode == 0, out.stderr
    pods = await eventually(lambda: (lambda p: p if len(p) == 2 else None)(
        _live_pods(control_plane, ns, pool)), what="two SFU pods")
    for pod in pods:  # restricted, and reached through its own NodePort Service
        assert not pod["spec"].get("hostNetwork")
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        svc = _json(control_plane, "get", "service", pod["metadata"]["name"], "-n", ns)
        assert svc["spec"]["type"] == "NodePort"
        assert env["PARLEY_SFU_PUBLIC_PORT"] == str(svc["spec"]["ports"][0]["nodePort"])

    beats: dict[str, SfuHeartbeat] = {}

    async def on_beat(env: Envelope) -> None:
        hb = SfuHeartbeat.model_validate_json(env.data)
        beats[hb.sfu_id] = hb

    bus = await NatsBus.connect(nats_server.url, name="test-heartbeats")
    await bus.subscribe(SFU_HEARTBEATS, on_beat)
    running: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for pod in pods:
            name = pod["metadata"]["name"]
            env, http_port = _sfu_env(pod)
            running[name] = procs.start(name, [sys.executable, "-m", "services", "sfu"], env)
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{http_port}/readyz",
                                    running[name], timeout=30)

        def ready() -> bool:
            status = _json(control_plane, "get", "sfupool", pool, "-n", ns).get("status", {})
            return status.get("readyReplicas") == 2 and len(status.get("sfus", [])) == 2

        await eventually(ready, what="the pool sees both SFUs heartbeating")
        out = control_plane.kubectl("scale", "-n", ns, f"sfupool/{pool}", "--replicas", "1")
        assert out.returncode == 0, out.stderr

        def one_exited() -> str | None:
            done = [n for n, p in running.items() if p.poll() is not None]
            return done[0] if len(done) == 1 else None

        gone = await eventually(one_exited, what="the drained SFU, without calls, exits")
        (kept,) = set(running) - {gone}
        assert running[gone].returncode == 0, procs.output(gone)[-2000:]
        assert "Traceback" not in procs.output(gone), procs.output(gone)[-2000:]
        await eventually(lambda: [p["metadata"]["name"] for p in
                                  _live_pods(control_plane, ns, pool)] == [kept],
                         what="the drained SFU's pod is deleted")
        await eventually(lambda: control_plane.kubectl(
            "get", "service", gone, "-n", ns).returncode != 0,
            what="the drained SFU's Service is deleted")
        assert running[kept].poll() is None, "the other SFU was stopped"
        assert not beats[kept].draining, "the other SFU was drained"
    finally:
        await bus.close()
    log = procs.output("operator")
    assert "403" not in log and "Forbidden" not in log, log[-3000:]
