"""ASGI pieces every HTTP service uses: body size limit, a private access log, request spans.

The access log names the route template (`/api/rooms/{name}/join`), never the path (it holds
room names) nor the client address; spans are named the same way.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from opentelemetry import trace
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY: Final[int] = 16 * 1024

access_log = logging.getLogger("parley.access")
REQUEST_SECONDS = Histogram(
    "parley_http_request_duration_seconds",
    "HTTP request duration by service, route template and status.",
    ["service", "route", "status"],
)


def route_template(scope: Scope) -> str:
    """The route template the router matched (set in the scope by the router), or `unmatched`."""
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")


class PrivateAccessLog:
    """Body-size limit + access log + a span per request, without PII."""

    def __init__(self, app: ASGIApp, *, service: str, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app, self.service, self.max_body = app, service, max_body
        self.tracer = trace.get_tracer(f"parley.{service}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _reject(send, 413, b'{"detail":"request body too large"}')
            return
        received = 0
        too_big = False

        async def limited_receive() -> Message:
            nonlocal received, too_big
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    too_big = True
                    return {"type": "http.disconnect"}
            return message

        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        started = time.perf_counter()
        with self.tracer.start_as_current_span(f"{scope['method']}") as span:
            try:
                await self.app(scope, limited_receive, recording_send)
            finally:
                route = route_template(scope)
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.status_code", status)
                elapsed = time.perf_counter() - started
                REQUEST_SECONDS.labels(self.service, route, str(status)).observe(elapsed)
                access_log.info("%s %s %d %.1fms", scope["method"], route, status, elapsed * 1e3)
        if too_big:
            return


async def _reject(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def add_private_middleware(app: Any, *, service: str, max_body: int = DEFAULT_MAX_BODY) -> None:
    """Install `PrivateAccessLog` on a FastAPI/Starlette app."""
    app.add_middleware(PrivateAccessLog, service=service, max_body=max_body)


def quiet_fastapi() -> dict[str, Any]:
    """FastAPI keyword arguments that switch off its own telemetry where it has any.

    FastAPI ≥ 0.16x records request spans with the raw path (which holds room names) by
    default; `PrivateAccessLog` makes the one span per request, named by route template.
    """
    import inspect

    from fastapi import FastAPI

    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False,
                              "operation_spans": False}}
    return {}
