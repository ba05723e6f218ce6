"""External TURN servers: the setting's format, pairing with secrets, health, ICE entries."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.credentials import turn_password
from services.common.serve import settings_error
from services.rooms.settings import RoomsSettings
from services.rooms.turnservers import (
    TurnHealth,
    external_servers,
    ice_entries,
    parse_url,
    split_server,
)

SERVER = "turn:turn.example.org:3478?transport=udp turns:turn.example.org:5349?transport=tcp"


def test_parse_url_defaults_ports_and_transports() -> None:
    assert parse_url("turn:t.example").port == 3478
    assert parse_url("turn:t.example").transport == "udp"
    assert parse_url("turns:t.example").port == 5349
    assert parse_url("turns:t.example").transport == "tcp"
    assert parse_url("turn:[2001:db8::1]:80?transport=tcp").host == "[2001:db8::1]"


@pytest.mark.parametrize("url", ["http://t.example", "turn:", "turn:t.example:0",
                                 "turn:t.example:3478?transport=sctp", "turn:a b",
                                 "turn:" + "a" * 300])
def test_parse_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        parse_url(url)


def test_split_server_needs_a_turn_url() -> None:
    assert len(split_server(SERVER)) == 2
    with pytest.raises(ValueError, match="no turn: or turns: URL"):
        split_server("stun:t.example:3478")


def test_external_servers_pairs_secrets_by_position() -> None:
    servers = external_servers([SERVER, "turn:other.example"], ["s1", "s2"])
    assert [(s.label, s.secret) for s in servers] == [("#1", "s1"), ("#2", "s2")]
    assert "s1" not in repr(servers[0])
    assert servers[0].probe_target() == ("turn.example.org", 3478, "udp")
    assert external_servers(["turns:t.example"], ["s"])[0].probe_target() is None


def test_settings_count_mismatch_is_one_line_without_the_secret(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_TURN_SERVERS", f'["{SERVER}", "turn:b.example"]')
    monkeypatch.setenv("PARLEY_TURN_SERVER_SECRETS", "very-secret-value")
    with pytest.raises(ValidationError) as info:
        RoomsSettings()
    line = settings_error(info.value)
    assert line == ("PARLEY_TURN_SERVERS lists 2 server(s) but "
                    "PARLEY_TURN_SERVER_SECRETS has 1 secret(s)")
    assert "very-secret-value" not in line


def test_settings_comma_separated_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_TURN_SERVERS", f"{SERVER}, turn:b.example:3478")
    monkeypatch.setenv("PARLEY_TURN_SERVER_SECRETS", "first-secret,second-secret")
    servers = RoomsSettings().external_turn()
    assert [len(s.urls) for s in servers] == [2, 1]
    assert "first-secret" not in repr(RoomsSettings())


def test_health_down_on_failure_up_on_recovery() -> None:
    health = TurnHealth(external_servers([SERVER, "turn:b.example"], ["s1", "s2"]))
    assert [s.index for s in health.up()] == [1, 2]
    assert health.record(1, ok=False) == "down"
    assert health.record(1, ok=False) is None
    assert [s.index for s in health.up()] == [2]
    assert health.record(1, ok=True) == "up"
    assert health.record(1, ok=True) is None
    assert [s.index for s in health.up()] == [1, 2]


def test_ice_entries_mint_rest_credentials_per_server() -> None:
    servers = external_servers([SERVER], ["s1"])
    [entry] = ice_entries(servers, ttl=600, now=1000.0)
    assert entry["urls"] == SERVER.split()
    username = str(entry["username"])
    assert username.startswith("1600:")
    assert entry["credential"] == turn_password("s1", username)
