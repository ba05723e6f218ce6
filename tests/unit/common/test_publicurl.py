"""URLs for browsers from PARLEY_PUBLIC_URL, and the relay address from the request."""

from __future__ import annotations

import pytest

from services.common.publicurl import (
    hostname,
    page_url,
    parse_public_url,
    relay_host,
    websocket_url,
)


@pytest.mark.parametrize(("given", "origin"), [
    ("https://Chat.Example.org/", "https://chat.example.org"),
    ("http://10.0.0.1:8080", "http://10.0.0.1:8080"),
    ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
    ("", ""),
])
def test_parse_public_url_origin(given: str, origin: str) -> None:
    assert parse_public_url(given) == origin


@pytest.mark.parametrize("bad", ["chat.example.org", "ftp://x", "https://x/path",
                                 "https://x/?q=1", "https://u@x", "https://x:99999"])
def test_parse_public_url_invalid(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_public_url(bad)


def test_urls_relative_without_public_url() -> None:
    assert (page_url("", "/amber-otter-1"), websocket_url("")) == ("/amber-otter-1", "/ws")


def test_urls_from_public_url() -> None:
    assert page_url("https://c.example", "/r") == "https://c.example/r"
    assert websocket_url("https://c.example") == "wss://c.example/ws"
    assert websocket_url("http://10.0.0.1:8080") == "ws://10.0.0.1:8080/ws"


@pytest.mark.parametrize(("announced", "local", "client", "handed_out"), [
    ("127.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.1"),
    ("0.0.0.0", "::ffff:192.168.7.1", "192.168.7.2", "192.168.7.1"),
    ("127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"),
    ("127.0.0.1", "127.0.0.1", "10.0.0.2", "chat.example.org"),  # behind Caddy
    ("127.0.0.1", None, "10.0.0.2", "chat.example.org"),
    ("127.0.0.1", "garbage", "127.0.0.1", "127.0.0.1"),
    ("0.0.0.0", None, "127.0.0.1", "127.0.0.1"),
    ("203.0.113.7", "10.0.0.1", "10.0.0.2", "203.0.113.7"),
    ("relay.example.org", "10.0.0.1", "10.0.0.2", "relay.example.org"),
])
def test_relay_host(announced: str, local: str | None, client: str, handed_out: str) -> None:
    assert relay_host(announced, local, client=client,
                      fallback="chat.example.org") == handed_out


def test_hostname_of_url_and_host_header() -> None:
    assert [hostname(v) for v in ("https://c.example:8443", "10.0.0.1:8080", "[::1]:80", "",
                                  None)] == ["c.example", "10.0.0.1", "::1", None, None]
