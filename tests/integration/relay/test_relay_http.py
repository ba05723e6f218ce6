"""The relay's HTTP side port: an over-long request line gets 431 and no traceback, and
every answer carries the security headers (issue 15, items 5 and 9)."""

from __future__ import annotations

import socket
from collections.abc import Callable

from relay_it_support import RelayProcess


def _send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_side_port_long_request_line_431_no_traceback(
    relay_factory: Callable[..., RelayProcess],
) -> None:
    relay = relay_factory()
    answer = _send_raw(relay.http_port, b"GET /" + b"a" * (70 * 1024) + b" HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert relay.http("/healthz")[0] == 200
    relay.terminate(timeout=10, now=True)
    out = relay.output()
    assert "Traceback" not in out and "Unhandled exception" not in out, out


def test_side_port_security_headers(relay_factory: Callable[..., RelayProcess]) -> None:
    relay = relay_factory()
    for path in (b"/healthz", b"/metrics", b"/nope"):
        head = _send_raw(relay.http_port, b"GET " + path + b" HTTP/1.1\r\n\r\n").split(
            b"\r\n\r\n")[0].decode()
        assert "X-Content-Type-Options: nosniff" in head
        assert "Referrer-Policy: no-referrer" in head
        assert "frame-ancestors 'none'" in head
