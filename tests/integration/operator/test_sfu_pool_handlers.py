"""The operator's SfuPool end to end against a Kubernetes API (kmock's fake, or with
`-m k8s` the session's real API server, with the chart's RBAC) and a real NATS; SFUs are
faked on NATS (heartbeats with peers, drain obeyed)."""

from __future__ import annotations

from typing import Any

from parley_operator.manifests import LABEL_POOL

from .conftest import Api, FakeRelays, Running, eventually, pool_manifest


async def _objects(api: Api, kind: Any, pool: str) -> list[dict[str, Any]]:
    found = await api.kube.list(kind, namespace=api.namespace, labels={LABEL_POOL: pool})
    return [o for o in found if not o["metadata"].get("deletionTimestamp")]


async def _status(api: Api, pool: str) -> dict[str, Any]:
    obj = await api.kube.get("SfuPool", pool, namespace=api.namespace)
    assert obj is not None
    return dict(obj.get("status") or {})


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom"))
            for e in pod["spec"]["containers"][0]["env"]}


async def test_sfupool_service_per_sfu_scales_on_peers_drains_before_removal(
    api: Api, operator: Running, sfus: FakeRelays,
) -> None:
    created = await api.kube.create(pool_manifest(api, {
        "replicas": {"min": 1, "max": 3}, "scaling": {
            "targetPeersPerSfu": 10, "scaleDownStabilizationSeconds": 0},
        "exposure": {"mode": "LoadBalancer"}}, kind="SfuPool"))
    name = str(created["metadata"]["name"])

    # one SFU: its Service first (one UDP port), its Pod once the address is known
    (svc,) = await eventually(lambda: _objects(api, "Service", name))
    assert svc["spec"]["ports"][0]["protocol"] == "UDP"
    assert svc["spec"]["ports"][0]["port"] == 7882
    assert svc["metadata"]["labels"]["app.kubernetes.io/component"] == "sfu"
    assert await _objects(api, "Pod", name) == []
    await api.assign_load_balancer(svc["metadata"]["name"], "203.0.113.50")
    (pod,) = await eventually(lambda: _objects(api, "Pod", name))
    first = pod["metadata"]["name"]
    assert first == svc["metadata"]["name"]
    env = _env(pod)
    assert env["PARLEY_SFU_ID"] == first
    assert env["PARLEY_SFU_PUBLIC_HOST"] == "203.0.113.50"
    assert env["PARLEY_SFU_NATS_URL"] == "nats://sfu@nats:4222"
    assert not pod["spec"].get("hostNetwork")
    owner = pod["metadata"].get("ownerReferences") or []
    assert not owner or owner[0]["kind"] == "SfuPool"

    # load: 25 peers on one SFU with a target of 10 makes three
    sfus.load[first] = 25

    async def three_services() -> list[dict[str, Any]]:
        svcs = await _objects(api, "Service", name)
        return svcs if len(svcs) == 3 else []

    svcs = await eventually(three_services)
    for i, s in enumerate(x for x in svcs if x["metadata"]["name"] != first):
        await api.assign_load_balancer(s["metadata"]["name"], f"203.0.113.{51 + i}")

    async def three_pods() -> list[dict[str, Any]]:
        pods = await _objects(api, "Pod", name)
        return pods if len(pods) == 3 else []

    pods = await eventually(three_pods)
    others = sorted(p["metadata"]["name"] for p in pods if p["metadata"]["name"] != first)
    for other in others:
        sfus.load[other] = 0

    async def three_active() -> dict[str, Any]:
        status = await _status(api, name)
        phases = [s["phase"] for s in status["sfus"]]
        return status if phases == ["Active"] * 3 else {}

    status = await eventually(three_active)
    assert status["peers"] == 25 and status["desiredReplicas"] == 3
    assert "secretRotatedAt" not in status
    conds = {c["type"]: c["reason"] for c in status["conditions"]}
    assert conds == {"Available": "SfusReady", "Progressing": "Stable",
                     "Degraded": "AsExpected"}

    # most peers leave: an idle SFU is drained over NATS, then its Pod and Service go
    sfus.load[first] = 1

    async def one_drained() -> str:
        asked = [sid for sid, c in sfus.controls if c.action == "drain"]
        return asked[0] if asked else ""

    drained = await eventually(one_drained)
    assert drained in others  # the least loaded goes, not the one still holding a call

    async def gone() -> bool:
        names = {o["metadata"]["name"] for o in await _objects(api, "Pod", name)}
        svc_names = {o["metadata"]["name"] for o in await _objects(api, "Service", name)}
        return drained not in names and drained not in svc_names

    assert await eventually(gone)
