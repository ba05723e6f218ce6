"""Pure manifest builders and spec parsing: relay Pods, Services, the TURN Secret."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from parley_operator.errors import SpecError
from parley_operator.manifests import (
    build_relay_pod_spec, build_relay_service_spec, build_secret_spec, pool_selector,
    relay_name_prefix, secret_name, secret_values,
)
from parley_operator.pool import PoolRef, parse_pool_spec

POOL = PoolRef(name="relays", namespace="parley", uid="u-1")


def _pod(spec: dict[str, Any], **kw: Any) -> dict[str, Any]:
    s, extras = parse_pool_spec(spec)
    return build_relay_pod_spec(POOL, s, extras, relay_id="relays-abcde", secret="relays-turn",
                                nats_url="nats://nats:4222", **kw)


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom"))
            for e in pod["spec"]["containers"][0]["env"]}


def test_build_relay_pod_spec_restricted_profile() -> None:
    pod = _pod({}, public_host="203.0.113.9")
    spec = pod["spec"]
    c = spec["containers"][0]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"] == {
        "runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "privileged": False, "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert spec["automountServiceAccountToken"] is False
    assert "hostNetwork" not in spec


def test_build_relay_pod_spec_owner_labels_probes_env() -> None:
    pod = _pod({"allowPeers": ["10.0.0.0/8"]}, public_host="203.0.113.9")
    meta = pod["metadata"]
    assert meta["ownerReferences"] == [{
        "apiVersion": "parley.dev/v1alpha1", "kind": "RelayPool", "name": "relays",
        "uid": "u-1", "controller": True, "blockOwnerDeletion": True}]
    assert meta["labels"]["parley.dev/relay"] == "relays-abcde"
    assert "controller.kubernetes.io/pod-deletion-cost" not in (meta.get("annotations") or {})
    c = pod["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    env = _env(pod)
    assert env["PARLEY_RELAY_PUBLIC_HOST"] == "203.0.113.9"
    assert env["PARLEY_RELAY_RELAY_ID"] == "relays-abcde"
    assert env["PARLEY_RELAY_LISTEN"] == "0.0.0.0:3478"
    assert env["PARLEY_RELAY_PORTS"] == "49152-49999"
    assert env["PARLEY_RELAY_ALLOW_PEER"] == "10.0.0.0/8"
    assert env["PARLEY_RELAY_SECRET_FILE"] == "/var/run/parley/turn/secrets"
    assert env["PARLEY_RELAY_RELAY_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_build_relay_pod_spec_host_network_uses_node_address() -> None:
    pod = _pod({"exposure": {"mode": "HostNetwork"}})
    spec = pod["spec"]
    assert spec["hostNetwork"] is True
    assert spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert _env(pod)["PARLEY_RELAY_PUBLIC_HOST"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert all(p["hostPort"] == p["containerPort"]
               for p in spec["containers"][0]["ports"] if p["name"].startswith("turn"))
    assert "requiredDuringSchedulingIgnoredDuringExecution" in spec["affinity"]["podAntiAffinity"]


def test_build_relay_pod_spec_node_port_announces_node_port() -> None:
    pod = _pod({"exposure": {"mode": "NodePort"}}, public_port=31234, public_tcp_port=31999)
    assert _env(pod)["PARLEY_RELAY_PUBLIC_PORT"] == "31234"
    assert _env(pod)["PARLEY_RELAY_PUBLIC_TCP_PORT"] == "31999"


def test_node_port_per_protocol() -> None:
    from parley_operator.observe import node_port

    svc = {"spec": {"ports": [
        {"name": "turn-udp", "protocol": "UDP", "port": 3478, "nodePort": 31234},
        {"name": "turn-tcp", "protocol": "TCP", "port": 3478, "nodePort": 31999},
        {"name": "turn-tls", "protocol": "TCP", "port": 443, "nodePort": 32000}]}}
    assert node_port(svc) == 31234
    assert node_port(svc, "TCP") == 31999
    assert node_port({"spec": {"ports": [{"protocol": "UDP"}]}}) is None


def test_build_relay_pod_spec_crd_only_fields() -> None:
    pod = _pod({"imagePullPolicy": "Always", "nodeSelector": {"role": "edge"},
                "tolerations": [{"key": "edge", "operator": "Exists"}],
                "ports": {"tls": 5349, "tlsSecretName": "relay-tls"}})
    spec = pod["spec"]
    assert spec["containers"][0]["imagePullPolicy"] == "Always"
    assert spec["nodeSelector"] == {"role": "edge"}
    assert spec["tolerations"] == [{"key": "edge", "operator": "Exists"}]
    assert _env(pod)["PARLEY_RELAY_TLS_LISTEN"] == "0.0.0.0:5349"
    assert {"name": "tls", "secret": {"secretName": "relay-tls", "defaultMode": 0o440}} \
        in spec["volumes"]


def test_build_relay_service_spec_load_balancer() -> None:
    spec, extras = parse_pool_spec({"exposure": {
        "mode": "LoadBalancer", "serviceAnnotations": {"lb.example/udp": "yes"}}})
    svc = build_relay_service_spec(POOL, spec, extras, relay_id="relays-abcde")
    assert svc is not None
    assert svc["metadata"]["name"] == "relays-abcde"
    assert svc["metadata"]["annotations"] == {"lb.example/udp": "yes"}
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["selector"] == {"parley.dev/pool": "relays",
                                       "parley.dev/relay": "relays-abcde"}
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert [(p["protocol"], p["port"]) for p in svc["spec"]["ports"]] == [
        ("UDP", 3478), ("TCP", 3478)]


def test_build_relay_service_spec_host_network_has_none() -> None:
    spec, extras = parse_pool_spec({"exposure": {"mode": "HostNetwork"}})
    assert build_relay_service_spec(POOL, spec, extras, relay_id="relays-abcde") is None


def test_build_secret_spec_current_previous_and_relay_file() -> None:
    secret = build_secret_spec(POOL, name="relays-turn", current="new", previous="old",
                               rotated_at="2026-11-25T12:00:00Z")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {"current": "new", "previous": "old", "secret-file": "new\nold\n"}
    assert secret_values(secret) == ("new", "old")
    assert secret["metadata"]["annotations"] == {"parley.dev/rotated-at": "2026-11-25T12:00:00Z"}


def test_secret_name_default_and_override() -> None:
    _, extras = parse_pool_spec({})
    assert secret_name(POOL, extras) == "relays-turn"
    _, extras = parse_pool_spec({"secretName": "turn"})
    assert secret_name(POOL, extras) == "turn"


def test_relay_name_prefix_is_a_dns_label_and_subject_token() -> None:
    assert relay_name_prefix(PoolRef(name="9.pool", namespace="x")) == "relay-9-pool-"
    assert len(relay_name_prefix(PoolRef(name="a" * 253, namespace="x"))) + 5 <= 63


def test_pool_selector_matches_labels() -> None:
    assert pool_selector(POOL) == "app.kubernetes.io/component=relay,parley.dev/pool=relays"


def test_parse_pool_spec_invalid_names_field() -> None:
    with pytest.raises(SpecError) as err:
        parse_pool_spec({"replicas": {"min": 5, "max": 2}})
    assert str(err.value) == (
        "spec.replicas: Value error, replicas.min (5) is above replicas.max (2)")


def test_parse_pool_spec_crd_defaults_accepted() -> None:
    spec, extras = parse_pool_spec({
        "imagePullPolicy": "IfNotPresent", "exposure": {"mode": "NodePort"},
        "ports": {"listen": 3478, "relayMin": 49152, "relayMax": 49999},
        "secretRotation": {"periodHours": 24}, "probe": {"intervalSeconds": 60}})
    assert spec.exposure.mode == "NodePort"
    assert extras.image_pull_policy == "IfNotPresent"


def test_build_relay_pod_spec_nats_url_from_a_secret() -> None:
    s, extras = parse_pool_spec({})
    pod = build_relay_pod_spec(POOL, s, extras, relay_id="relays-abcde", secret="relays-turn",
                               nats_url="secret:parley-connections/relayNatsUrl",
                               public_host="203.0.113.9")
    assert _env(pod)["PARLEY_RELAY_NATS_URL"] == {
        "secretKeyRef": {"name": "parley-connections", "key": "relayNatsUrl"}}
    assert _env(_pod({}, public_host="203.0.113.9"))["PARLEY_RELAY_NATS_URL"] == \
        "nats://nats:4222"


def test_build_relay_pod_spec_nats_url_secret_without_key() -> None:
    s, extras = parse_pool_spec({})
    with pytest.raises(ValueError, match=r"secret:<name>/<key>"):
        build_relay_pod_spec(POOL, s, extras, relay_id="relays-abcde", secret="relays-turn",
                             nats_url="secret:parley-connections", public_host="203.0.113.9")
