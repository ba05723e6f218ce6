"""values.yaml and values.schema.json: every key commented, the schema strict and saying
the same as the comments, and bad values failing `helm template` with a message that
names them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.chart.conftest import CHART, run_helm
from tests.chart.valuesdoc import key_comments

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES_FILE = CHART / "values.yaml"


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        node = {**SCHEMA["$defs"][name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _schema_at(dotted: str) -> tuple[dict[str, Any] | None, bool]:
    """(schema node of the key, whether the chart itself lists it).

    Keys inside a value typed by a shared definition ($defs: resources, label selectors,
    Kubernetes objects) are Kubernetes's fields, documented there, not listed by the chart.
    """
    node = SCHEMA
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if "$ref" in node:
            return None, False
        props = node.get("properties")
        if props is None:
            return None, False
        if part not in props:
            return None, True
        node = props[part]
        if i == len(parts) - 1:
            return node, True
    return None, False


def test_values_every_key_commented_as_in_schema() -> None:
    comments = key_comments(VALUES_FILE)
    problems = []
    for dotted, comment in comments.items():
        node, listed = _schema_at(dotted)
        if not listed:
            continue  # inside a free-form value (resources, selectors...): no schema of its own
        if node is None:
            problems.append(f"{dotted}: not in values.schema.json")
        elif not comment:
            problems.append(f"{dotted}: no comment in values.yaml")
        elif node.get("description") != comment:
            problems.append(
                f"{dotted}: schema says {node.get('description')!r}, values.yaml {comment!r}")
    assert not problems, "\n".join(problems)


def test_values_schema_keys_all_in_values_yaml() -> None:
    comments = key_comments(VALUES_FILE)

    def walk(node: dict[str, Any], prefix: str) -> list[str]:
        node = _resolve(node)
        out = []
        for key, sub in node.get("properties", {}).items():
            dotted = f"{prefix}{key}"
            if prefix or key:
                out.append(dotted)
            if sub.get("properties") or ("$ref" not in sub and sub.get("type") == "object"):
                out += walk(sub, dotted + ".")
        return out

    missing = [k for k in walk(SCHEMA, "") if k not in comments]
    assert not missing, f"in the schema but not in values.yaml: {missing}"


def test_values_schema_strict_everywhere() -> None:
    """Every object with listed properties forbids others."""

    def walk(node: Any, path: str) -> list[str]:
        if not isinstance(node, dict):
            return []
        bad = []
        if "properties" in node and node.get("additionalProperties") is not False:
            bad.append(path or "/")
        for key, sub in node.get("properties", {}).items():
            bad += walk(sub, f"{path}/{key}")
        for key, sub in node.get("$defs", {}).items():
            bad += walk(sub, f"$defs/{key}")
        return bad

    assert walk(SCHEMA, "") == []


def test_values_defaults_valid_against_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(yaml.safe_load(VALUES_FILE.read_text()), SCHEMA,
                        cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--set", "rooms.replicaz=2"], "'replicaz' not allowed"),
        (["--set-string", "rooms.replicas=two"], "/rooms/replicas': got string, want integer"),
        (["--set", "rooms.replicas=-1"], "/rooms/replicas': minimum: got -1"),
        (["--set", "relays.replicas.min=-3"], "/relays/replicas/min': minimum: got -3"),
        (["--set", "relays.exposure.mode=Ingress"], "/relays/exposure/mode'"),
        (["--set", "ingress.tls.enabled=yes"], "/ingress/tls/enabled': got string, want boolean"),
        (["--set", "nats.url=http://nats:4222"], "/nats/url'"),
        (["--set", "config.trustedProxies={10.0.0.1}"], "/config/trustedProxies/0'"),
        (["--set", "relays.replicas.min=5", "--set", "relays.replicas.max=2"],
         "relays.replicas.min (5) must not exceed relays.replicas.max (2)"),
        (["--set", "rooms.autoscaling.minReplicas=12"],
         "rooms.autoscaling.minReplicas (12) must not exceed rooms.autoscaling.maxReplicas (10)"),
        (["--set", "ingress.tls.enabled=true"], "ingress.tls.enabled needs ingress.host"),
        (["--set", "relays.ports.tls=5349"], "relays.ports.tls needs relays.ports.tlsSecretName"),
    ],
    ids=["misspelt-key", "wrong-type", "negative-replicas", "negative-relays", "bad-enum",
         "bool-as-string", "bad-url", "bad-cidr", "min-above-max", "hpa-min-above-max",
         "tls-without-host", "relay-tls-without-cert"],
)
def test_bad_values_fail_naming_them(helm: str, args: list[str], named: str) -> None:
    proc = run_helm(helm, "template", "parley", str(CHART), *args)
    assert proc.returncode != 0, f"helm template {args} succeeded"
    assert named in proc.stderr, proc.stderr
