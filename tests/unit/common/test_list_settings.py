"""Every list setting of every service takes a JSON list or comma-separated values
(issue 15, item 11: `PARLEY_TRUSTED_PROXIES=127.0.0.0/8` crashed rooms with a traceback)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from services.common.serve import settings_error
from services.metrics.settings import MetricsSettings
from services.relay.settings import RelaySettings
from services.rooms.settings import RoomsSettings
from services.signaling.settings import SignalingSettings

# (settings class, variable, field, two valid items)
LIST_SETTINGS: list[tuple[type[Any], str, str, tuple[str, str]]] = [
    (RoomsSettings, "PARLEY_TRUSTED_PROXIES", "trusted_proxies", ("127.0.0.0/8", "::1/128")),
    (RoomsSettings, "PARLEY_STUN_URLS", "stun_urls", ("stun:a.example:3478", "stuns:b.example")),
    (RoomsSettings, "PARLEY_ALLOWED_ORIGINS", "allowed_origins",
     ("https://a.example", "http://localhost:8080")),
    (SignalingSettings, "PARLEY_ALLOWED_ORIGINS", "allowed_origins",
     ("https://a.example", "http://localhost:8080")),
    (SignalingSettings, "PARLEY_TRUSTED_PROXIES", "trusted_proxies", ("10.0.0.0/8", "fc00::/7")),
    (MetricsSettings, "PARLEY_METRICS_API_KEYS", "metrics_api_keys", ("key-one", "key-two")),
    (MetricsSettings, "PARLEY_METRICS_ALLOWED_ORIGINS", "metrics_allowed_origins",
     ("https://a.example", "https://b.example")),
    (MetricsSettings, "PARLEY_TRUSTED_PROXIES", "trusted_proxies", ("127.0.0.1/32", "::1")),
    (RelaySettings, "PARLEY_RELAY_ALLOW_PEER", "allow_peer", ("127.0.0.1/32", "10.1.0.0/16")),
]
IDS = [f"{cls.__name__}-{var}" for cls, var, _, _ in LIST_SETTINGS]


def _build(cls: type[Any]) -> Any:
    return cls(secret="s", relay_ip="127.0.0.1") if cls is RelaySettings else cls()


def _plain(values: list[Any]) -> list[str]:
    return [v.get_secret_value() if isinstance(v, SecretStr) else v for v in values]


@pytest.mark.parametrize(("cls", "var", "field", "items"), LIST_SETTINGS, ids=IDS)
@pytest.mark.parametrize("form", ["json", "comma", "comma-spaces", "one"])
def test_list_setting_json_and_comma(
    monkeypatch: pytest.MonkeyPatch, cls: type[Any], var: str, field: str,
    items: tuple[str, str], form: str,
) -> None:
    a, b = items
    text, expected = {
        "json": (f'["{a}", "{b}"]', [a, b]),
        "comma": (f"{a},{b}", [a, b]),
        "comma-spaces": (f" {a} , {b} ,", [a, b]),
        "one": (a, [a]),
    }[form]
    monkeypatch.setenv(var, text)
    assert _plain(getattr(_build(cls), field)) == expected


@pytest.mark.parametrize(("cls", "var", "field", "items"), LIST_SETTINGS, ids=IDS)
def test_list_setting_broken_json_names_variable(
    monkeypatch: pytest.MonkeyPatch, cls: type[Any], var: str, field: str,
    items: tuple[str, str],
) -> None:
    monkeypatch.setenv(var, f'["{items[0]}"')
    with pytest.raises(ValidationError) as info:
        _build(cls)
    prefix = "PARLEY_RELAY_" if cls is RelaySettings else "PARLEY_"
    assert settings_error(info.value, prefix) == (
        f"{var}: not a JSON list (Expecting ',' delimiter at character {len(items[0]) + 3})")


def test_trusted_proxies_bare_cidr_was_the_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_TRUSTED_PROXIES", "127.0.0.0/8")
    assert RoomsSettings().trusted_proxies == ["127.0.0.0/8"]


def test_security_contact_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    for given, kept in (("security@example.org", "mailto:security@example.org"),
                        ("mailto:s@example.org", "mailto:s@example.org"),
                        ("https://example.org/report", "https://example.org/report"),
                        ("", "")):
        monkeypatch.setenv("PARLEY_SECURITY_CONTACT", given)
        assert RoomsSettings().security_contact == kept
