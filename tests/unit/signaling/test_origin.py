"""Unit tests of the Origin check."""

from __future__ import annotations

from services.signaling.origin import origin_allowed


def test_origin_allowed_no_origin_header() -> None:
    assert origin_allowed(None, "signal.example", ["https://parley.example"])


def test_origin_allowed_empty_list_same_host_any_port() -> None:
    assert origin_allowed("http://localhost:8080", "localhost:8081", [])


def test_origin_allowed_empty_list_other_host_refused() -> None:
    assert not origin_allowed("https://evil.example", "parley.example", [])


def test_origin_allowed_listed_origin() -> None:
    assert origin_allowed("https://Parley.example", "x", ["https://parley.example/"])


def test_origin_allowed_unlisted_origin_refused() -> None:
    assert not origin_allowed("https://parley.example:444", "x", ["https://parley.example"])


def test_origin_allowed_star() -> None:
    assert origin_allowed("https://anything.example", "x", ["*"])


def test_origin_allowed_null_origin_refused() -> None:
    assert not origin_allowed("null", "localhost", [])
