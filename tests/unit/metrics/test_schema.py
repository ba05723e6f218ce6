"""The beacon schema and the ingest core: what is accepted, refused and kept."""

from __future__ import annotations

import json

import pytest

from services.metrics.errors import BadBeacon, UnsupportedMedia
from services.metrics.ingest import parse_beacon, to_record
from services.metrics.schema import Beacon, beacon_json_schema

CHROME_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/126.0.0.0 Safari/537.36")
DAY_NOON = 1_764_072_000.0  # 2025-11-25T12:00:00Z


def beacon(**over: object) -> dict[str, object]:
    body: dict[str, object] = {"v": 1, "nonce": "n" * 22, "event": "session-end",
                               "local_candidate": "relay", "relay_protocol": "tls",
                               "remote_candidate": "host", "protocol": "udp"}
    body.update(over)
    return body


def test_parse_beacon_json_and_text_plain() -> None:
    raw = json.dumps(beacon()).encode()
    assert parse_beacon(raw, "application/json").relay_protocol == "tls"
    assert parse_beacon(raw, "text/plain;charset=UTF-8").event == "session-end"


@pytest.mark.parametrize("field", ["ip", "room", "userAgent", "user_id", "timestamp"])
def test_parse_beacon_unknown_field(field: str) -> None:
    raw = json.dumps(beacon(**{field: "203.0.113.9"})).encode()
    with pytest.raises(BadBeacon) as info:
        parse_beacon(raw, "application/json")
    assert field in info.value.message
    assert "203.0.113.9" not in info.value.message


def test_parse_beacon_other_media_type() -> None:
    with pytest.raises(UnsupportedMedia):
        parse_beacon(json.dumps(beacon()).encode(), "application/x-www-form-urlencoded")


@pytest.mark.parametrize("body", [
    b"not json", b"[]", json.dumps(beacon(event="crash")).encode(),
    json.dumps(beacon(event="connect-failure")).encode(),
    json.dumps(beacon(failure_stage="ice")).encode(),
    json.dumps(beacon(local_candidate="host")).encode(),
    json.dumps(beacon(nonce="short")).encode(),
    json.dumps(beacon(mute_toggles=7)).encode(),
])
def test_parse_beacon_invalid(body: bytes) -> None:
    with pytest.raises(BadBeacon):
        parse_beacon(body, "application/json")


def test_to_record_drops_nonce_ua_and_time() -> None:
    b = Beacon.model_validate(beacon(nonce="secret-nonce-value-123"))
    payload, msg_id = to_record(b, {"user-agent": CHROME_UA}, now=DAY_NOON)
    text = payload.decode()
    assert msg_id == "secret-nonce-value-123"
    assert "secret-nonce" not in text
    assert "Mozilla" not in text and "126.0.0.0" not in text
    record = json.loads(text)
    assert record["day"] == "2025-11-25"
    assert record["client"] == {"browser": "Chrome", "browser_major": 126, "os": "Windows",
                                "device": "desktop"}
    assert "12:00" not in text


def test_beacon_json_schema_forbids_extra_fields() -> None:
    schema = beacon_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"v", "nonce", "event"}
    assert "failure_stage" in schema["properties"]
    assert all("description" in p for p in schema["properties"].values())
    assert "browser" in schema["x-parley-derived"]["properties"]
    assert "IP address" in schema["x-parley-never-stored"]
