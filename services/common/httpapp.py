"""ASGI pieces every HTTP service uses: body size limit, a private access log, request spans,
and the security headers on every response.

The access log names the route template (`/api/rooms/{name}/join`), never the path (it holds
room names) nor the client address; spans are named the same way, and continue the
caller's W3C `traceparent` (the browser's join request). `SecurityHeaders` puts a
Content-Security-Policy (with `frame-ancestors 'none'`), `X-Content-Type-Options: nosniff` and
`Referrer-Policy: no-referrer` on every response a route did not already give them to, so
that no HTML page (static files included) goes out without them.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.telemetry import extract_context, private_span

DEFAULT_MAX_BODY: Final[int] = 16 * 1024
#: Only `traceparent` is taken from a request: a client's `tracestate` is free text that
#: would be exported with every span of the trace.
TRACE_HEADERS: Final[tuple[bytes, ...]] = (b"traceparent",)
#: The CSP of a service that serves no page: nothing may load, nothing may frame it.
STRICT_CSP: Final[str] = (
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

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
        # the caller's W3C trace context (the browser's join, another service): a child span
        parent = extract_context({k.decode("latin-1"): v.decode("latin-1")
                                  for k, v in headers.items() if k in TRACE_HEADERS})
        with private_span(self.tracer, f"{scope['method']}", context=parent,
                          kind=SpanKind.SERVER) as span:
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


def security_headers(csp: str = STRICT_CSP) -> dict[str, str]:
    """The headers every response carries (a route may set its own values first)."""
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


class SecurityHeaders:
    """Adds `security_headers(csp)` to every HTTP response that lacks them."""

    def __init__(self, app: ASGIApp, *, csp: str = STRICT_CSP) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in security_headers(csp).items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers") or []}
                extra = [(k, v) for k, v in self.headers if k not in present]
                if extra:
                    message = {**message, "headers": [*(message.get("headers") or []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def add_private_middleware(
    app: Any, *, service: str, max_body: int = DEFAULT_MAX_BODY, csp: str = STRICT_CSP
) -> None:
    """Install `PrivateAccessLog` and `SecurityHeaders` on a FastAPI/Starlette app."""
    app.add_middleware(PrivateAccessLog, service=service, max_body=max_body)
    app.add_middleware(SecurityHeaders, csp=csp)


def openapi_url(enabled: bool, path: str = "/openapi.json") -> str | None:
    """Where FastAPI publishes the OpenAPI schema: nowhere unless `PARLEY_OPENAPI` is on.

    No service serves HTML API docs: FastAPI's load swagger-ui from a CDN onto our origin.
    """
    return path if enabled else None


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
