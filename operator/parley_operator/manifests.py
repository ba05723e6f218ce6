"""Pure builders of the objects a RelayPool owns: relay Pods, their Services, the TURN Secret;
and the parts every pool's members share (labels, owner, restricted Pod, per-member
Service, tracing settings), which `sfu_manifests` builds SfuPool members from.

Every `build_*_spec()` returns a plain dict (the manifest) and does no I/O, as
dask-kubernetes builds its worker pods. Relay pods follow the restricted Pod Security
Standard; the relay listens on 3478 (above 1024), so no capability is needed.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

from parley_operator.pool import PoolExtras, PoolRef
from parley_operator.spec import RELAY_HTTP_PORT, PoolSpec

__all__ = [
    "ANNOTATION_DELETION_COST", "ANNOTATION_DRAINING_SINCE", "ANNOTATION_ROTATE",
    "ANNOTATION_ROTATED_AT", "HTTP_PORT", "LABEL_POOL", "LABEL_RELAY",
    "Tracing", "build_relay_pod_spec", "build_relay_service_spec", "build_secret_spec",
    "member_meta", "member_pod", "member_service", "new_secret_value", "pool_labels",
    "pool_selector", "probes", "relay_name_prefix", "secret_name", "secret_values",
    "tracing_env",
]

SECRET_URL_PREFIX: Final[str] = "secret:"
LABEL_POOL: Final[str] = "parley.dev/pool"
LABEL_RELAY: Final[str] = "parley.dev/relay"
ANNOTATION_DRAINING_SINCE: Final[str] = "parley.dev/draining-since"
ANNOTATION_ROTATED_AT: Final[str] = "parley.dev/rotated-at"
ANNOTATION_ROTATE: Final[str] = "parley.dev/rotate-secret"
ANNOTATION_DELETION_COST: Final[str] = "controller.kubernetes.io/pod-deletion-cost"
HTTP_PORT: Final[int] = RELAY_HTTP_PORT
UID: Final[int] = 10001
SECRET_DIR: Final[str] = "/var/run/parley/turn"
SECRET_FILE_KEY: Final[str] = "secret-file"  # current on line 1, previous on line 2
TLS_DIR: Final[str] = "/var/run/parley/tls"
# the relay drains on SIGTERM for this long; the operator deletes a pod only once it is
# empty or past the pool's drain deadline, so this is short
POD_DRAIN_SECONDS: Final[int] = 25
GRACE_SECONDS: Final[int] = 30


def pool_labels(pool: PoolRef) -> dict[str, str]:
    """Labels on every object of the pool (and the selector the operator lists with)."""
    return {
        "app.kubernetes.io/name": "parley",
        "app.kubernetes.io/component": pool.kind.component,
        "app.kubernetes.io/managed-by": "parley-operator",
        LABEL_POOL: pool.name[:63],
    }


def pool_selector(pool: PoolRef) -> str:
    """The pool's member-pod label selector as a string (`.status.selector`, for an HPA)."""
    labels = pool_labels(pool)
    keys = ("app.kubernetes.io/component", LABEL_POOL)
    return ",".join(f"{k}={labels[k]}" for k in keys)


def relay_name_prefix(pool: PoolRef) -> str:
    """Member ids are `<prefix><5 random>`: a DNS-1035 label and a NATS subject token."""
    base = re.sub(r"[^a-z0-9-]", "-", pool.name.lower())
    if not base[:1].isalpha():
        base = f"{pool.kind.component}-{base}"
    return f"{base[:57].rstrip('-')}-"


def secret_name(pool: PoolRef, extras: PoolExtras) -> str:
    """The TURN Secret's name: `spec.secretName`, else `<pool>-turn`."""
    return extras.secret_name or f"{pool.name[:248]}-turn"


def _owner(pool: PoolRef) -> list[dict[str, Any]]:
    if pool.uid is None:
        return []
    return [{
        "apiVersion": pool.api_version, "kind": pool.kind.kind, "name": pool.name,
        "uid": pool.uid, "controller": True, "blockOwnerDeletion": True,
    }]


def _meta(pool: PoolRef, name: str, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name, "namespace": pool.namespace, "labels": {**pool_labels(pool), **labels},
    }
    if owners := _owner(pool):
        meta["ownerReferences"] = owners
    return meta


def member_meta(pool: PoolRef, extras: PoolExtras | None, member_id: str) -> dict[str, Any]:
    """Metadata of a member's Pod or Service: pool labels, its id label, the owner."""
    meta = _meta(pool, member_id, **{pool.kind.member_label: member_id})
    if extras is not None and extras.service_annotations:
        meta["annotations"] = dict(extras.service_annotations)
    return meta


@dataclass(frozen=True, slots=True)
class Tracing:
    """The operator's own trace settings, copied to the pods it builds (so that a join's
    trace goes on into the relay's allocation, docs/operations.md "Traces")."""

    exporter: str = "none"  # none | console | otlp
    otlp_endpoint: str | None = None
    otlp_protocol: str = "http/protobuf"


def tracing_env(tracing: Tracing, *, setting: str | None) -> list[dict[str, Any]]:
    """Env vars for `tracing`: the service's exporter setting (e.g.
    `PARLEY_RELAY_OTEL_EXPORTER`; None when the service has none) and the OTLP endpoint."""
    env: list[dict[str, Any]] = []
    if setting is not None:
        env.append({"name": setting, "value": tracing.exporter})
    if tracing.otlp_endpoint:
        env += [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": tracing.otlp_endpoint},
                {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": tracing.otlp_protocol}]
    return env


def probes(*, live: str, ready: str) -> dict[str, Any]:
    """Startup and liveness on `live`, readiness on `ready`, all on the `http` port."""
    probe = {"httpGet": {"path": live, "port": "http"}, "periodSeconds": 10,
             "timeoutSeconds": 3, "failureThreshold": 3}
    return {
        "readinessProbe": {**probe, "httpGet": {"path": ready, "port": "http"},
                           "periodSeconds": 5},
        "livenessProbe": probe,
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 30},
    }


def member_pod(
    pool: PoolRef, extras: PoolExtras, *, member_id: str, container: dict[str, Any],
    volumes: list[dict[str, Any]], host_network: bool = False,
    grace_seconds: int = GRACE_SECONDS,
) -> dict[str, Any]:
    """A member's Pod around `container`: the restricted profile (non-root, read-only root,
    no privilege escalation, no capabilities, RuntimeDefault seccomp, no service-account
    token), an emptyDir /tmp, spread over nodes (required on the host network)."""
    container = {
        **container,
        "imagePullPolicy": extras.image_pull_policy,
        "securityContext": {
            "runAsNonRoot": True, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},
                         *container.get("volumeMounts", [])],
    }
    pod_labels = {LABEL_POOL: pool.name[:63]}
    affinity_term = {
        "labelSelector": {"matchLabels": pod_labels},
        "topologyKey": "kubernetes.io/hostname",
    }
    affinity: dict[str, Any] = (
        {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [affinity_term]}}
        if host_network else
        {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": affinity_term}]}}
    )
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Always",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": grace_seconds,
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "affinity": affinity,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}, *volumes],
    }
    if host_network:
        pod_spec["hostNetwork"] = True
        pod_spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    if extras.node_selector:
        pod_spec["nodeSelector"] = dict(extras.node_selector)
    if extras.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in extras.tolerations]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": member_meta(pool, None, member_id),
        "spec": pod_spec,
    }


def member_service(
    pool: PoolRef, extras: PoolExtras, *, member_id: str, mode: str,
    ports: list[tuple[str, str, int]],
) -> dict[str, Any]:
    """The Service that gives one member its own public address (`mode`: LoadBalancer or
    NodePort), selecting that member's Pod only.

    `externalTrafficPolicy: Local` keeps the clients' source addresses (a relay's per-IP
    limits and XOR-MAPPED-ADDRESS, an SFU's ICE checks need them); `publishNotReadyAddresses`
    keeps a draining member (whose /readyz fails on purpose) reachable for its calls.
    """
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": member_meta(pool, extras, member_id),
        "spec": {
            "type": mode,
            "selector": {LABEL_POOL: pool.name[:63], pool.kind.member_label: member_id},
            "externalTrafficPolicy": "Local",
            "publishNotReadyAddresses": True,
            "ports": [
                {"name": name, "protocol": proto, "port": port, "targetPort": port}
                for name, proto, port in ports
            ],
        },
    }


def _env(
    spec: PoolSpec, *, relay_id: str, nats_url: str, public_host: str | None,
    public_port: int | None, public_tcp_port: int | None = None,
    tracing: Tracing | None = None,
) -> list[dict[str, Any]]:
    p = spec.ports
    env: list[dict[str, Any]] = [
        {"name": "PARLEY_RELAY_RELAY_ID", "value": relay_id},
        {"name": "PARLEY_RELAY_LISTEN", "value": f"0.0.0.0:{p.listen}"},
        {"name": "PARLEY_RELAY_RELAY_IP",
         "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "PARLEY_RELAY_PORTS", "value": f"{p.relay_min}-{p.relay_max}"},
        {"name": "PARLEY_RELAY_SECRET_FILE", "value": f"{SECRET_DIR}/secrets"},
        {"name": "PARLEY_RELAY_NATS_URL", **nats_url_source(nats_url)},
        {"name": "PARLEY_RELAY_HTTP_PORT", "value": str(HTTP_PORT)},
        {"name": "PARLEY_RELAY_WORKERS", "value": str(spec.relay_workers())},
        {"name": "PARLEY_RELAY_DRAIN_DEADLINE", "value": str(POD_DRAIN_SECONDS)},
    ]
    if public_host is not None:
        env.append({"name": "PARLEY_RELAY_PUBLIC_HOST", "value": public_host})
    else:  # NodePort / HostNetwork: the node's address
        env.append({"name": "PARLEY_RELAY_PUBLIC_HOST",
                    "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}})
    if worker_ports := spec.worker_ports():  # validated: never with a public port (NodePort)
        env.append({"name": "PARLEY_RELAY_WORKER_PORT_BASE", "value": str(worker_ports[0])})
    if public_port is not None:
        env.append({"name": "PARLEY_RELAY_PUBLIC_PORT", "value": str(public_port)})
    if public_tcp_port is not None:
        env.append({"name": "PARLEY_RELAY_PUBLIC_TCP_PORT", "value": str(public_tcp_port)})
    if spec.allow_peers:
        env.append({"name": "PARLEY_RELAY_ALLOW_PEER", "value": " ".join(spec.allow_peers)})
    if p.tls is not None:
        env += [
            {"name": "PARLEY_RELAY_TLS_LISTEN", "value": f"0.0.0.0:{p.tls}"},
            {"name": "PARLEY_RELAY_TLS_CERT", "value": f"{TLS_DIR}/tls.crt"},
            {"name": "PARLEY_RELAY_TLS_KEY", "value": f"{TLS_DIR}/tls.key"},
        ]
    if tracing is not None:
        env += tracing_env(tracing, setting="PARLEY_RELAY_OTEL_EXPORTER")
    return env


def _turn_ports(spec: PoolSpec) -> list[tuple[str, str, int]]:
    """The ports clients reach, as (name, protocol, port): TURN on UDP and TCP, TLS if on,
    then each worker port on UDP and TCP (`worker<k>-udp`/`-tcp`, at most 12 characters of
    the 15 a port name may have)."""
    ports = [("turn-udp", "UDP", spec.ports.listen), ("turn-tcp", "TCP", spec.ports.listen)]
    if spec.ports.tls is not None:
        ports.append(("turn-tls", "TCP", spec.ports.tls))
    for k, port in enumerate(spec.worker_ports()):
        ports += [(f"worker{k}-udp", "UDP", port), (f"worker{k}-tcp", "TCP", port)]
    return ports


def nats_url_source(nats_url: str) -> dict[str, Any]:
    """How a member pod gets its NATS URL: `secret:<name>/<key>` reads it from that Secret
    (a URL with a password never shows in the pod spec); anything else is the URL itself."""
    if nats_url.startswith(SECRET_URL_PREFIX):
        name, _, key = nats_url.removeprefix(SECRET_URL_PREFIX).partition("/")
        if not name or not key:
            raise ValueError("a relay NATS URL from a Secret is secret:<name>/<key>")
        return {"valueFrom": {"secretKeyRef": {"name": name, "key": key}}}
    return {"value": nats_url}


def build_relay_pod_spec(
    pool: PoolRef, spec: PoolSpec, extras: PoolExtras, *, relay_id: str, secret: str,
    nats_url: str, public_host: str | None = None, public_port: int | None = None,
    public_tcp_port: int | None = None, tracing: Tracing | None = None,
) -> dict[str, Any]:
    """The Pod of one relay.

    Args:
        pool: the owning RelayPool.
        spec, extras: its validated spec.
        relay_id: the relay's id: pod name, Service name and NATS subject token.
        secret: name of the TURN Secret (mounted; the relay rereads it on reload-secrets).
        nats_url: where the relay heartbeats and takes control requests, or
            `secret:<name>/<key>` for a Secret holding that URL (see `nats_url_source`).
        public_host: the address clients use (LoadBalancer ingress); None = the node's.
        public_port: the UDP port clients use when it is not the listening port (NodePort).
        public_tcp_port: likewise for TURN over TCP (a NodePort Service gives it its own).
        tracing: the operator's trace settings, passed on (None: the relay's defaults).

    Returns:
        A core/v1 Pod manifest (restricted Pod Security profile, owner reference to the pool);
        with `ports.workerBase` and several workers, `PARLEY_RELAY_WORKER_PORT_BASE` and a
        container port (a host port on the host network) per worker and protocol.
    """
    host_network = spec.exposure.mode == "HostNetwork"
    container_ports: list[dict[str, Any]] = []
    for name, proto, port in _turn_ports(spec):
        entry: dict[str, Any] = {"name": name, "containerPort": port, "protocol": proto}
        if host_network:
            entry["hostPort"] = port
        container_ports.append(entry)
    container_ports.append({"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"})
    mounts: list[dict[str, Any]] = [
        {"name": "turn-secret", "mountPath": SECRET_DIR, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "turn-secret", "secret": {
            "secretName": secret, "defaultMode": 0o440,
            "items": [{"key": SECRET_FILE_KEY, "path": "secrets"}],
        }},
    ]
    if spec.ports.tls is not None and extras.tls_secret_name:
        mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
        volumes.append({"name": "tls", "secret": {
            "secretName": extras.tls_secret_name, "defaultMode": 0o440}})
    container: dict[str, Any] = {
        "name": "relay",
        "image": spec.image,
        "command": ["parley", "relay"],
        "env": _env(spec, relay_id=relay_id, nats_url=nats_url, public_host=public_host,
                    public_port=public_port, public_tcp_port=public_tcp_port,
                    tracing=tracing),
        "ports": container_ports,
        **probes(live="/healthz", ready="/readyz"),
        "volumeMounts": mounts,
    }
    if spec.resources:
        container["resources"] = {k: dict(v) for k, v in spec.resources.items()}
    return member_pod(pool, extras, member_id=relay_id, container=container, volumes=volumes,
                      host_network=host_network)


def build_relay_service_spec(
    pool: PoolRef, spec: PoolSpec, extras: PoolExtras, *, relay_id: str
) -> dict[str, Any] | None:
    """The Service that gives one relay its public address (its TURN ports, and its worker
    ports when `ports.workerBase` is set and the relays run several workers); None in
    HostNetwork mode."""
    if spec.exposure.mode == "HostNetwork":
        return None
    return member_service(pool, extras, member_id=relay_id, mode=spec.exposure.mode,
                          ports=_turn_ports(spec))


def new_secret_value() -> str:
    """A fresh TURN REST shared secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def build_secret_spec(
    pool: PoolRef, *, name: str, current: str, previous: str, rotated_at: str
) -> dict[str, Any]:
    """The TURN Secret: `current` and `previous` (rooms reads `current`), and the relay's
    secrets file (`secret-file`: current on line 1, previous on line 2)."""
    meta = _meta(pool, name)
    meta["annotations"] = {ANNOTATION_ROTATED_AT: rotated_at}
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": meta,
        "data": {
            "current": _b64(current),
            "previous": _b64(previous),
            SECRET_FILE_KEY: _b64(f"{current}\n{previous}\n"),
        },
    }


def secret_values(secret: dict[str, Any]) -> tuple[str, str]:
    """(current, previous) read back from a Secret (`data`, or `stringData` if a fake kept it)."""
    data = secret.get("data") or {}
    plain = secret.get("stringData") or {}

    def one(key: str) -> str:
        if key in data and data[key] is not None:
            return base64.b64decode(data[key]).decode()
        return str(plain.get(key) or "")

    return one("current"), one("previous")
