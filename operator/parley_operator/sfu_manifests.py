"""Pure builders of the objects an SfuPool owns: one Pod and one Service per SFU.

An SFU takes every participant's ICE, DTLS and SRTP on one UDP port, so each SFU needs its
own public UDP address: a LoadBalancer or NodePort Service per Pod, never the host network
(the Pods meet the restricted Pod Security profile). The address goes into the SFU's SDP
answers through `PARLEY_SFU_PUBLIC_HOST` / `PARLEY_SFU_PUBLIC_PORT` (docs/sfu.md).
"""

from __future__ import annotations

from typing import Any, Final

from parley_operator.manifests import (
    POD_DRAIN_SECONDS, Tracing, member_pod, member_service, nats_url_source, probes,
    tracing_env,
)
from parley_operator.pool import PoolExtras, PoolRef
from parley_operator.spec import SfuPoolSpec

__all__ = ["SFU_HTTP_PORT", "build_sfu_pod_spec", "build_sfu_service_spec", "sfu_ports"]

SFU_HTTP_PORT: Final[int] = 9643


def sfu_ports(spec: SfuPoolSpec) -> list[tuple[str, str, int]]:
    """The one port an SFU is reached on: (name, protocol, port)."""
    return [("sfu-udp", "UDP", spec.ports.listen)]


def _env(
    spec: SfuPoolSpec, *, sfu_id: str, nats_url: str, public_host: str | None,
    public_port: int | None, tracing: Tracing | None,
) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "PARLEY_SFU_ID", "value": sfu_id},
        {"name": "PARLEY_SFU_LISTEN", "value": f"0.0.0.0:{spec.ports.listen}"},
        {"name": "PARLEY_SFU_NATS_URL", **nats_url_source(nats_url)},
        {"name": "PARLEY_SFU_HTTP_PORT", "value": str(SFU_HTTP_PORT)},
        {"name": "PARLEY_SFU_MAX_PEERS", "value": str(spec.max_peers)},
        # the operator drains over NATS first and deletes an SFU once it is empty or past
        # spec.drain.maxSeconds: SIGTERM then only has stragglers to let go
        {"name": "PARLEY_SFU_DRAIN_DEADLINE", "value": str(POD_DRAIN_SECONDS)},
    ]
    if public_host is not None:
        env.append({"name": "PARLEY_SFU_PUBLIC_HOST", "value": public_host})
    else:  # NodePort: the node's address
        env.append({"name": "PARLEY_SFU_PUBLIC_HOST",
                    "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}})
    if public_port is not None:
        env.append({"name": "PARLEY_SFU_PUBLIC_PORT", "value": str(public_port)})
    if tracing is not None:  # the SFU has no exporter setting (yet): the OTLP endpoint only
        env += tracing_env(tracing, setting=None)
    return env


def build_sfu_pod_spec(
    pool: PoolRef, spec: SfuPoolSpec, extras: PoolExtras, *, sfu_id: str, nats_url: str,
    public_host: str | None = None, public_port: int | None = None,
    tracing: Tracing | None = None,
) -> dict[str, Any]:
    """The Pod of one SFU.

    Args:
        pool: the owning SfuPool.
        spec, extras: its validated spec.
        sfu_id: the SFU's id: pod name, Service name and NATS subject token.
        nats_url: the `sfu` user's NATS URL, or `secret:<name>/<key>` for a Secret holding it.
        public_host: the LoadBalancer ingress address; None = the node's (NodePort).
        public_port: the UDP port clients use when it is not the listening port (NodePort).
        tracing: the operator's trace settings, passed on (None: the SFU's defaults).

    Returns:
        A core/v1 Pod manifest (restricted Pod Security profile, owner reference to the pool).
    """
    container: dict[str, Any] = {
        "name": "sfu",
        "image": spec.image,
        "command": ["parley", "sfu"],
        "env": _env(spec, sfu_id=sfu_id, nats_url=nats_url, public_host=public_host,
                    public_port=public_port, tracing=tracing),
        "ports": [
            *({"name": name, "containerPort": port, "protocol": proto}
              for name, proto, port in sfu_ports(spec)),
            {"name": "http", "containerPort": SFU_HTTP_PORT, "protocol": "TCP"},
        ],
        **probes(live="/healthz", ready="/readyz"),  # the relay's HealthServer
    }
    if spec.resources:
        container["resources"] = {k: dict(v) for k, v in spec.resources.items()}
    return member_pod(pool, extras, member_id=sfu_id, container=container, volumes=[])


def build_sfu_service_spec(
    pool: PoolRef, spec: SfuPoolSpec, extras: PoolExtras, *, sfu_id: str
) -> dict[str, Any]:
    """The Service that gives one SFU its public UDP address."""
    return member_service(pool, extras, member_id=sfu_id, mode=spec.exposure.mode,
                          ports=sfu_ports(spec))
