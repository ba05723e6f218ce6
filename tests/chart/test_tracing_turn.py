"""The chart's trace export (OTLP endpoint) and external TURN servers (secret from a
Secret): the environment each container gets and the egress its NetworkPolicy opens."""

from __future__ import annotations

import json
from typing import Any

from tests.chart.conftest import CHART, run_helm

VALUES = CHART / "ci" / "tracing-external-turn-values.yaml"


def _env(manifests: Any, name: str) -> dict[str, Any]:
    [deploy] = [m for m in manifests if m["kind"] == "Deployment"
                and m["metadata"]["name"] == f"parley-{name}"]
    [container] = deploy["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _egress_ports(manifests: Any, name: str) -> set[tuple[str, int]]:
    [policy] = [m for m in manifests if m["kind"] == "NetworkPolicy"
                and m["metadata"]["name"] == f"parley-{name}"]
    return {(p["protocol"], p["port"]) for rule in policy["spec"]["egress"]
            for p in rule.get("ports", []) if "to" not in rule}


def test_tracing_otlp_endpoint_reaches_every_service(render: Any) -> None:
    manifests = render(VALUES)
    for name in ("rooms", "signaling", "metrics", "logpurge"):
        env = _env(manifests, name)
        assert env["PARLEY_OTEL_EXPORTER"] == "otlp"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://tempo.monitoring:4318"
        assert ("TCP", 4318) in _egress_ports(manifests, name), name


def test_tracing_off_by_default_opens_nothing(render: Any) -> None:
    manifests = render()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in _env(manifests, "rooms")
    assert _egress_ports(manifests, "rooms") == set()


def test_external_turn_secret_from_a_secret_and_probe_egress(render: Any) -> None:
    manifests = render(VALUES)
    env = _env(manifests, "rooms")
    assert json.loads(env["PARLEY_TURN_SERVERS"]) == [
        "turn:turn.example.org:3478?transport=udp turns:turn.example.org:5349?transport=tcp"]
    assert env["PARLEY_TURN_SERVER_SECRETS"] == {
        "secretKeyRef": {"name": "coturn-rest", "key": "secrets"}}
    assert env["PARLEY_TURN_PROBE_INTERVAL"] == "15"
    assert {("UDP", 3478), ("TCP", 3478), ("TCP", 5349)} <= _egress_ports(manifests, "rooms")
    assert "PARLEY_TURN_SERVERS" not in _env(manifests, "signaling")


def test_external_turn_without_secret_fails_naming_it(helm: str) -> None:
    proc = run_helm(helm, "template", "parley", str(CHART),
                    "--set", "rooms.externalTurn.servers[0]=turn:turn.example.org")
    assert proc.returncode != 0
    assert "rooms.externalTurn.servers needs rooms.externalTurn.existingSecret" in proc.stderr
