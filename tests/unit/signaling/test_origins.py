"""Which origins may open /ws: the list, else the public URL, else the request's host."""

from __future__ import annotations

import pytest

from services.signaling.origin import origin_allowed
from services.signaling.settings import SignalingSettings


def test_origins_public_url_when_no_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_PUBLIC_URL", "https://chat.example.org/")
    monkeypatch.delenv("PARLEY_ALLOWED_ORIGINS", raising=False)
    allowed = SignalingSettings().origins()
    assert allowed == ["https://chat.example.org"]
    assert origin_allowed("https://chat.example.org", "127.0.0.1:8081", allowed)
    assert not origin_allowed("http://10.0.0.1:8080", "10.0.0.1:8080", allowed)


def test_origins_list_wins_over_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_PUBLIC_URL", "https://chat.example.org")
    monkeypatch.setenv("PARLEY_ALLOWED_ORIGINS", "https://a.example")
    assert SignalingSettings().origins() == ["https://a.example"]


@pytest.mark.parametrize("address", ["127.0.0.1:8080", "localhost:8080", "10.0.0.1:8443"])
def test_origins_same_host_behind_the_gateway(monkeypatch: pytest.MonkeyPatch,
                                              address: str) -> None:
    """The gateway keeps the browser's Host: a page opened by any address may open /ws."""
    monkeypatch.delenv("PARLEY_PUBLIC_URL", raising=False)
    monkeypatch.delenv("PARLEY_ALLOWED_ORIGINS", raising=False)
    assert origin_allowed(f"http://{address}", address, SignalingSettings().origins())
