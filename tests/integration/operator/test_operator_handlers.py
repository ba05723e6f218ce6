"""The operator's kopf handlers end to end against a Kubernetes API and a real NATS.

The API is a fake (kmock's in-memory Kubernetes API emulator) or, with `-m k8s` and
KUBECONFIG, a real cluster; relays are faked on NATS (heartbeats with load, drain obeyed);
the WebRTC probe is a fake that records what it was asked.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest

from parley_operator.manifests import ANNOTATION_DRAINING_SINCE, LABEL_POOL

from .conftest import Api, FakeRelays, Running, eventually, pool_manifest


async def _relay_pods(api: Api, pool: str) -> list[dict[str, Any]]:
    pods = await api.kube.list("Pod", namespace=api.namespace, labels={LABEL_POOL: pool})
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


async def _status(api: Api, pool: str) -> dict[str, Any]:
    obj = await api.kube.get("RelayPool", pool, namespace=api.namespace)
    assert obj is not None
    return dict(obj.get("status") or {})


def _cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    """The condition of that type ({} until the operator has written it: read it with .get)."""
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def _secret(obj: dict[str, Any], key: str) -> str:
    if key in (obj.get("data") or {}):
        return base64.b64decode(obj["data"][key]).decode()
    return str((obj.get("stringData") or {}).get(key, ""))


async def _create_pool(api: Api, spec: dict[str, Any]) -> str:
    created = await api.kube.create(pool_manifest(api, spec))
    return str(created["metadata"]["name"])


async def test_relaypool_created_makes_services_pods_secret_and_status(
    api: Api, operator: Running, relays: FakeRelays,
) -> None:
    name = await _create_pool(api, {"replicas": {"min": 2, "max": 4},
                                    "exposure": {"mode": "LoadBalancer"}})

    async def services() -> list[dict[str, Any]]:
        svcs = await api.kube.list("Service", namespace=api.namespace, labels={LABEL_POOL: name})
        return svcs if len(svcs) == 2 else []

    svcs = await eventually(services)
    assert {s["spec"]["type"] for s in svcs} == {"LoadBalancer"}
    assert await _relay_pods(api, name) == []  # each pod waits for its public address
    for i, svc in enumerate(svcs):
        await api.assign_load_balancer(svc["metadata"]["name"], f"203.0.113.{i + 1}")

    async def two_pods() -> list[dict[str, Any]]:
        pods = await _relay_pods(api, name)
        return pods if len(pods) == 2 else []

    pods = await eventually(two_pods)
    by_name = {s["metadata"]["name"]: s for s in svcs}
    for pod in pods:
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert pod["metadata"]["name"] in by_name
        assert env["PARLEY_RELAY_PUBLIC_HOST"].startswith("203.0.113.")
        assert env["PARLEY_RELAY_RELAY_ID"] == pod["metadata"]["name"]
        assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
        owner = pod["metadata"].get("ownerReferences") or []
        assert not owner or owner[0]["kind"] == "RelayPool"

    secret = await api.kube.get("Secret", api.secret_name(name), namespace=api.namespace)
    assert secret is not None and _secret(secret, "current")

    for pod in pods:
        relays.load[pod["metadata"]["name"]] = 5

    async def available() -> dict[str, Any]:
        status = await _status(api, name)
        assert status.get("readyReplicas") == 2, status
        assert _cond(status, "Available").get("status") == "True"
        assert _cond(status, "ProbeHealthy").get("status") == "True"
        return status

    status = await eventually(available)
    assert status["allocations"] == 10
    assert {r["publicAddress"] for r in status["relays"]} == {"203.0.113.1:3478",
                                                               "203.0.113.2:3478"}
    assert {r["phase"] for r in status["relays"]} == {"Active"}
    assert all(r["lastProbe"]["result"] == "Succeeded" for r in status["relays"])
    assert _cond(status, "Degraded").get("status") == "False"
    assert status["selector"] == f"app.kubernetes.io/component=relay,{LABEL_POOL}={name}"


async def test_relaypool_scaled_by_load_and_by_desired_replicas(
    api: Api, operator: Running, relays: FakeRelays,
) -> None:
    name = await _create_pool(api, {
        "replicas": {"min": 1, "max": 6}, "exposure": {"mode": "HostNetwork"},
        "scaling": {"targetAllocationsPerRelay": 10}})
    first = (await eventually(lambda: _relay_pods(api, name)))[0]["metadata"]["name"]
    assert await api.kube.list("Service", namespace=api.namespace,
                               labels={LABEL_POOL: name}) == []
    relays.load[first] = 35  # ceil(35 / 10) = 4 relays

    async def count(n: int) -> bool:
        return len(await _relay_pods(api, name)) == n

    await eventually(lambda: count(4))
    await api.kube.patch("RelayPool", name, {"spec": {"replicas": {"desired": 5}}},
                         namespace=api.namespace)
    await eventually(lambda: count(5))
    status = await eventually(lambda: _status(api, name))
    assert status.get("lastScaleUp")


async def test_relaypool_drains_least_loaded_relay_then_deletes_it_when_empty(
    api: Api, operator: Running, relays: FakeRelays,
) -> None:
    name = await _create_pool(api, {
        "replicas": {"min": 1, "max": 3, "desired": 2}, "exposure": {"mode": "HostNetwork"},
        "scaling": {"scaleDownStabilizationSeconds": 0, "maxScaleDownPerMinute": 1}})

    async def pods_named() -> list[str]:
        names = sorted(p["metadata"]["name"] for p in await _relay_pods(api, name))
        return names if len(names) == 2 else []

    busy, quiet = await eventually(pods_named)
    relays.load.update({busy: 3, quiet: 1})
    await eventually(lambda: _ready(api, name, 2))
    await api.kube.patch("RelayPool", name, {"spec": {"replicas": {"desired": 1}}},
                         namespace=api.namespace)

    async def drain_seen() -> bool:
        return relays.asked(quiet, "drain")

    await eventually(drain_seen)
    assert not relays.asked(busy, "drain")

    async def annotated() -> bool:  # the operator asks the relay first, then annotates
        pod = await api.kube.get("Pod", quiet, namespace=api.namespace)
        return pod is not None and ANNOTATION_DRAINING_SINCE in (
            pod["metadata"].get("annotations") or {})

    await eventually(annotated)

    async def draining() -> bool:
        status = await _status(api, name)
        phases = {r["name"]: r["phase"] for r in status.get("relays") or []}
        return phases.get(quiet) == "Draining" and phases.get(busy) == "Active"

    await eventually(draining)
    assert await api.kube.get("Pod", quiet, namespace=api.namespace) is not None
    relays.load[quiet] = 0  # its last call ended

    async def removed() -> bool:
        return [p["metadata"]["name"] for p in await _relay_pods(api, name)] == [busy]

    await eventually(removed)


async def _ready(api: Api, name: str, n: int) -> bool:
    return (await _status(api, name)).get("readyReplicas") == n


async def test_relaypool_secret_rotated_keeps_previous(
    api: Api, operator: Running, relays: FakeRelays,
) -> None:
    name = await _create_pool(api, {
        "replicas": {"min": 1, "max": 1}, "exposure": {"mode": "HostNetwork"},
        "secretRotation": {"periodHours": 24}})

    async def secret() -> dict[str, Any] | None:
        return await api.kube.get("Secret", api.secret_name(name), namespace=api.namespace)

    first = _secret(await eventually(secret), "current")
    relay = (await eventually(lambda: _relay_pods(api, name)))[0]["metadata"]["name"]
    relays.load[relay] = 0
    operator.clock.offset = timedelta(hours=25)

    async def rotated() -> dict[str, Any] | None:
        s = await secret()
        return s if s and _secret(s, "previous") == first else None

    after = await eventually(rotated)
    assert _secret(after, "current") not in ("", first)
    assert _secret(after, "secret-file").splitlines() == [_secret(after, "current"), first]

    async def reload_seen() -> bool:
        return relays.asked(relay, "reload-secrets")

    await eventually(reload_seen)
    second = _secret(after, "current")
    # asked for by annotation (a leaked secret): rotated again without waiting a period
    await api.kube.patch("RelayPool", name, {"metadata": {"annotations": {
        "parley.dev/rotate-secret": "leak-1"}}}, namespace=api.namespace)

    async def rotated_again() -> dict[str, Any] | None:
        s = await secret()
        return s if s and _secret(s, "previous") == second else None

    await eventually(rotated_again)


async def test_relaypool_failing_probe_replaces_relay(
    api: Api, operator: Running, relays: FakeRelays,
) -> None:
    name = await _create_pool(api, {
        "replicas": {"min": 1, "max": 2}, "exposure": {"mode": "HostNetwork"},
        "probe": {"intervalSeconds": 5, "failureThreshold": 1}})
    relay = (await eventually(lambda: _relay_pods(api, name)))[0]["metadata"]["name"]
    if api.fake:  # no kubelet: play it and give the pod its node address
        await api.kube.patch("Pod", relay, {"status": {"hostIP": "192.0.2.10"}},
                             namespace=api.namespace, status=True)

    async def host_ip() -> str | None:  # on a real cluster KWOK gives the node's address
        pod = await api.kube.get("Pod", relay, namespace=api.namespace)
        return (pod or {}).get("status", {}).get("hostIP")

    host = await eventually(host_ip)
    relays.load[relay] = 2
    operator.probe_ok[f"{host}:3478"] = False

    async def degraded() -> dict[str, Any]:
        status = await _status(api, name)
        assert _cond(status, "Degraded").get("reason") == "ProbeFailures", status
        assert _cond(status, "ProbeHealthy").get("status") in ("False", "Unknown")
        return status

    await eventually(degraded)
    await eventually(lambda: _asked(relays, relay, "drain"))

    async def replaced() -> bool:
        names = [p["metadata"]["name"] for p in await _relay_pods(api, name)]
        return len(names) == 2 and relay in names

    await eventually(replaced)


async def _asked(relays: FakeRelays, relay: str, action: str) -> bool:
    return relays.asked(relay, action)


async def test_relaypool_invalid_spec_is_a_permanent_error(
    api: Api, operator: Running,
) -> None:
    if not api.fake:
        pytest.skip("a real API server rejects this spec at admission (CRD schema)")
    name = await _create_pool(api, {"replicas": {"min": 5, "max": 2}})

    async def degraded() -> dict[str, Any]:
        status = await _status(api, name)
        return next((c for c in status.get("conditions") or [] if c["type"] == "Degraded"), {})

    cond = await eventually(degraded)
    assert cond["reason"] == "InvalidSpec"
    assert cond["message"] == (
        "spec.replicas: Value error, replicas.min (5) is above replicas.max (2)")
    assert await _relay_pods(api, name) == []
