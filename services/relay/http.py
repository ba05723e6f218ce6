"""The HTTP side port: `/healthz`, `/readyz`, `/metrics`; a tiny asyncio server, no framework.

Kept dependency-free because it runs in the supervisor next to forked workers; it reads
only the shared counters. Requests are never logged (no addresses anywhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

_STATUS = {
    200: "OK", 404: "Not Found", 405: "Method Not Allowed",
    431: "Request Header Fields Too Large", 503: "Service Unavailable",
}
#: Every answer carries the headers our other HTTP services put on theirs.
_SECURITY_HEADERS = (
    "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
)


class HealthServer:
    """Serves liveness, readiness and metrics from callables."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        healthy: Callable[[], bool],
        ready: Callable[[], bool],
        registry: CollectorRegistry,
    ) -> None:
        self.sock = sock
        self.healthy = healthy
        self.ready = ready
        self.registry = registry
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Start serving on the pre-bound socket."""
        self._server = await asyncio.start_server(self._handle, sock=self.sock)

    async def close(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                line = await asyncio.wait_for(reader.readline(), 5.0)
                for _ in range(100):
                    header = await asyncio.wait_for(reader.readline(), 5.0)
                    if header in (b"\r\n", b"\n", b""):
                        break
            except ValueError:  # a line over the reader's limit (64 KiB): no traceback
                writer.write(_answer(431, b"request line or header too large\n", "text/plain"))
                await writer.drain()
                return
            parts = line.split()
            method, path = (parts[0], parts[1].split(b"?")[0]) if len(parts) >= 2 else (b"", b"")
            status, body, ctype = self._route(method, path)
            writer.write(_answer(status, body if method != b"HEAD" else b"", ctype,
                                 length=len(body)))
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def _route(self, method: bytes, path: bytes) -> tuple[int, bytes, str]:
        if method not in (b"GET", b"HEAD"):
            return 405, b"method not allowed\n", "text/plain"
        if path == b"/healthz":
            ok = self.healthy()
            return (200 if ok else 503), (b"ok\n" if ok else b"unhealthy\n"), "text/plain"
        if path == b"/readyz":
            ok = self.ready()
            return (200 if ok else 503), (b"ready\n" if ok else b"not ready\n"), "text/plain"
        if path == b"/metrics":
            return 200, generate_latest(self.registry), CONTENT_TYPE_LATEST
        return 404, b"not found\n", "text/plain"


def _answer(status: int, body: bytes, ctype: str, *, length: int | None = None) -> bytes:
    """A whole HTTP/1.1 response that closes the connection."""
    head = (
        f"HTTP/1.1 {status} {_STATUS[status]}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n{_SECURITY_HEADERS}"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body
