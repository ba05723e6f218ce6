"""Metrics settings: k floor, key and origin lists."""

from __future__ import annotations

import pytest

from services.common.settings import SettingsError
from services.metrics.errors import Unauthorized
from services.metrics.routes import check_key
from services.metrics.settings import MetricsSettings


def test_settings_small_k_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_METRICS_K", "4")
    with pytest.raises(SettingsError, match="PARLEY_METRICS_ALLOW_SMALL_K"):
        MetricsSettings()
    monkeypatch.setenv("PARLEY_METRICS_ALLOW_SMALL_K", "true")
    assert MetricsSettings().metrics_k == 4


def test_settings_lists_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_METRICS_API_KEYS", " a1 ,b2,")
    monkeypatch.setenv("PARLEY_METRICS_ALLOWED_ORIGINS", "http://localhost:8080/")
    monkeypatch.setenv("PARLEY_TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1/32")
    s = MetricsSettings()
    assert s.api_keys() == [b"a1", b"b2"]
    assert s.metrics_allowed_origins == ["http://localhost:8080"]
    assert s.trusted_proxies == ["10.0.0.0/8", "127.0.0.1/32"]
    assert "a1" not in repr(s)


def test_check_key_accepts_any_configured_key() -> None:
    check_key("b2", [b"a1", b"b2"])
    for bad in ("", "a", "b2 ", "A1"):
        with pytest.raises(Unauthorized):
            check_key(bad, [b"a1", b"b2"])
    with pytest.raises(Unauthorized):
        check_key("", [])
