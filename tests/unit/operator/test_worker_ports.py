"""RelayPool `spec.ports.workerBase`: the spec checks, the relay Pod's env and ports, its
Service's ports, and the contract with the relay (the env the operator writes is one the
relay accepts, announcing the same worker ports)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from parley_operator.errors import SpecError
from parley_operator.manifests import build_relay_pod_spec, build_relay_service_spec
from parley_operator.pool import PoolRef, parse_pool_spec
from parley_operator.spec import MAX_WORKER_PORTS, RELAY_HTTP_PORT
from services.relay.app import load_settings
from services.relay.settings import MAX_WORKER_PORTS as RELAY_MAX_WORKER_PORTS
from services.relay.settings import RelaySettings

POOL = PoolRef(name="relays", namespace="parley", uid="u-1")


def _spec(ports: dict[str, Any], *, cpu: str | None = "4", mode: str = "LoadBalancer",
          ) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": ports, "exposure": {"mode": mode}}
    if cpu is not None:
        spec["resources"] = {"limits": {"cpu": cpu}}
    return spec


def _pod(raw: dict[str, Any], **kw: Any) -> dict[str, Any]:
    spec, extras = parse_pool_spec(raw)
    return build_relay_pod_spec(POOL, spec, extras, relay_id="relays-abcde",
                                secret="relays-turn", nats_url="nats://nats:4222", **kw)


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom"))
            for e in pod["spec"]["containers"][0]["env"]}


def _container_ports(pod: dict[str, Any]) -> list[tuple[str, str, int, int | None]]:
    return [(p["name"], p["protocol"], p["containerPort"], p.get("hostPort"))
            for p in pod["spec"]["containers"][0]["ports"]]


def test_worker_base_unset_is_off() -> None:
    pod = _pod(_spec({}), public_host="203.0.113.9")
    assert "PARLEY_RELAY_WORKER_PORT_BASE" not in _env(pod)
    assert _env(pod)["PARLEY_RELAY_WORKERS"] == "4"
    assert [n for n, *_ in _container_ports(pod)] == ["turn-udp", "turn-tcp", "http"]


def test_worker_base_load_balancer_pod_env_and_ports() -> None:
    pod = _pod(_spec({"workerBase": 40000}), public_host="203.0.113.9")
    env = _env(pod)
    assert env["PARLEY_RELAY_WORKER_PORT_BASE"] == "40000"
    assert env["PARLEY_RELAY_WORKERS"] == "4"
    assert "PARLEY_RELAY_PUBLIC_PORT" not in env
    assert _container_ports(pod) == [
        ("turn-udp", "UDP", 3478, None), ("turn-tcp", "TCP", 3478, None),
        ("worker0-udp", "UDP", 40000, None), ("worker0-tcp", "TCP", 40000, None),
        ("worker1-udp", "UDP", 40001, None), ("worker1-tcp", "TCP", 40001, None),
        ("worker2-udp", "UDP", 40002, None), ("worker2-tcp", "TCP", 40002, None),
        ("worker3-udp", "UDP", 40003, None), ("worker3-tcp", "TCP", 40003, None),
        ("http", "TCP", RELAY_HTTP_PORT, None)]


def test_worker_base_load_balancer_service_ports() -> None:
    spec, extras = parse_pool_spec(_spec({"workerBase": 40000, "tls": 5349}, cpu="2500m"))
    svc = build_relay_service_spec(POOL, spec, extras, relay_id="relays-abcde")
    assert svc is not None
    assert [(p["name"], p["protocol"], p["port"], p["targetPort"])
            for p in svc["spec"]["ports"]] == [
        ("turn-udp", "UDP", 3478, 3478), ("turn-tcp", "TCP", 3478, 3478),
        ("turn-tls", "TCP", 5349, 5349),
        ("worker0-udp", "UDP", 40000, 40000), ("worker0-tcp", "TCP", 40000, 40000),
        ("worker1-udp", "UDP", 40001, 40001), ("worker1-tcp", "TCP", 40001, 40001)]


def test_worker_base_host_network_host_ports() -> None:
    pod = _pod(_spec({"workerBase": 40000}, cpu="2", mode="HostNetwork"))
    assert _env(pod)["PARLEY_RELAY_WORKER_PORT_BASE"] == "40000"
    workers = [(n, port, host) for n, _, port, host in _container_ports(pod)
               if n.startswith("worker")]
    assert workers == [("worker0-udp", 40000, 40000), ("worker0-tcp", 40000, 40000),
                       ("worker1-udp", 40001, 40001), ("worker1-tcp", 40001, 40001)]


@pytest.mark.parametrize("cpu", [None, "1", "1999m", "nan", "inf", "lots"])
def test_worker_base_one_worker_is_inert(cpu: str | None) -> None:
    raw = _spec({"workerBase": 40000}, cpu=cpu)
    spec, extras = parse_pool_spec(raw)
    assert spec.relay_workers() == 1
    assert spec.worker_ports() == []
    pod = _pod(raw, public_host="203.0.113.9")
    assert "PARLEY_RELAY_WORKER_PORT_BASE" not in _env(pod)
    svc = build_relay_service_spec(POOL, spec, extras, relay_id="relays-abcde")
    assert svc is not None and len(svc["spec"]["ports"]) == 2


def test_worker_base_node_port_refused() -> None:
    with pytest.raises(SpecError) as err:
        parse_pool_spec(_spec({"workerBase": 40000}, mode="NodePort"))
    assert str(err.value) == (
        "spec: Value error, ports.workerBase needs exposure.mode LoadBalancer or HostNetwork: "
        "a NodePort Service translates ports, and worker ports must reach the relay as "
        "announced")


@pytest.mark.parametrize(("ports", "cpu", "message"), [
    ({"workerBase": 65533}, "4", "ports.workerBase 65533-65536 (4 workers) ends past 65535"),
    ({"workerBase": 49150}, "4",
     "ports.workerBase 49150-49153 (4 workers) overlaps the relayed ports 49152-49999"),
    ({"workerBase": 3476}, "4", "ports.workerBase 3476-3479 (4 workers) includes ports.listen "
     "3478"),
    ({"workerBase": 5348, "tls": 5349}, "2",
     "ports.workerBase 5348-5349 (2 workers) includes ports.tls 5349"),
    ({"workerBase": 9641}, None, "ports.workerBase 9641 includes the HTTP port 9641"),
    ({"workerBase": 2000}, "65", "ports.workerBase allows at most 64 workers per relay, the "
     "CPU limit gives 65"),
], ids=["past-65535", "over-relayed", "over-listen", "over-tls",
        "over-http", "too-many-workers"])
def test_worker_base_bad_ranges_named(
    ports: dict[str, Any], cpu: str | None, message: str
) -> None:
    with pytest.raises(SpecError) as err:
        parse_pool_spec(_spec(ports, cpu=cpu))
    assert str(err.value) == f"spec: Value error, {message}"


def test_worker_base_just_below_the_relayed_ports_accepted() -> None:
    raw = _spec({"workerBase": 40000, "relayMin": 40002, "relayMax": 40100}, cpu="2500m")
    assert parse_pool_spec(raw)[0].worker_ports() == [40000, 40001]


def test_worker_port_names_fit_a_service_port_name() -> None:
    spec, extras = parse_pool_spec(_spec({"workerBase": 1024}, cpu=str(MAX_WORKER_PORTS)))
    svc = build_relay_service_spec(POOL, spec, extras, relay_id="relays-abcde")
    assert svc is not None
    names = [p["name"] for p in svc["spec"]["ports"]]
    assert len(names) == len(set(names)) == 2 + 2 * MAX_WORKER_PORTS
    # IANA_SVC_NAME, as the API server checks it: 15 characters, lowercase, a letter
    assert all(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?", n) for n in names), names


@pytest.mark.parametrize("mode", ["LoadBalancer", "HostNetwork"])
def test_worker_base_env_accepted_by_the_relay(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The relay's own settings (services/relay/settings.py) read the env the operator
    writes and announce the ports the operator exposes."""
    raw = _spec({"workerBase": 40000, "tls": 5349}, cpu="3", mode=mode)
    pod = _pod(raw, public_host="203.0.113.9" if mode == "LoadBalancer" else None)
    for name, value in _env(pod).items():
        if isinstance(value, str) and name not in ("PARLEY_RELAY_SECRET_FILE",):
            monkeypatch.setenv(name, value)
    settings = load_settings(secret="s", relay_ip="10.1.2.3", public_host="203.0.113.9")
    assert settings.worker_listen_ports() == [40000, 40001, 40002]
    assert [p for n, _, p, _ in _container_ports(pod) if n.endswith("-udp")][1:] == \
        settings.worker_listen_ports()


def test_operator_limits_match_the_relay() -> None:
    assert MAX_WORKER_PORTS == RELAY_MAX_WORKER_PORTS
    assert RelaySettings.model_fields["http_port"].default == RELAY_HTTP_PORT
