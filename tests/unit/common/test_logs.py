from __future__ import annotations

import io
import logging

import pytest

from services.common.logs import PIIFilter, redact, scrub


@pytest.mark.parametrize(
    "text",
    [
        "client 203.0.113.7 joined",
        "from 2001:db8::1 now",
        "peer [fe80::1%eth0]:443",
        "mapped ::ffff:192.0.2.1 x",
        "addr=10.0.0.1:3478",
    ],
)
def test_scrub_removes_ip_addresses(text: str) -> None:
    out = scrub(text)
    assert "[ip]" in out
    for needle in ("203.0.113.7", "2001:db8::1", "fe80::1", "192.0.2.1", "10.0.0.1"):
        assert needle not in out


@pytest.mark.parametrize(
    "text", ["version 1.2.3", "12:30:45", "took 3.5ms", "std::vector", "1.2.3.4.5"]
)
def test_scrub_keeps_ordinary_text(text: str) -> None:
    assert scrub(text) == text


def test_scrub_registered_room_name() -> None:
    redact("secret-meeting-991")
    assert scrub("joined secret-meeting-991 ok") == "joined [room] ok"


def _logger() -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(PIIFilter())
    handler.setFormatter(logging.Formatter("%(message)s %(room)s"))
    lg = logging.getLogger("test.pii")
    lg.handlers = [handler]
    lg.propagate = False
    lg.setLevel(logging.INFO)
    return lg, out


def test_pii_filter_args_and_extras() -> None:
    lg, out = _logger()
    lg.info("join from %s", "198.51.100.4", extra={"room": "my-private-room"})
    text = out.getvalue()
    assert "198.51.100.4" not in text and "my-private-room" not in text
    assert "[ip]" in text and "[room]" in text


def test_pii_filter_exception_text() -> None:
    lg, out = _logger()
    try:
        raise ValueError("bad peer 192.0.2.55")
    except ValueError:
        lg.exception("failed", extra={"room": "-"})
    assert "192.0.2.55" not in out.getvalue()
