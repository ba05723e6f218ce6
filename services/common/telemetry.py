"""OpenTelemetry tracing setup and W3C trace-context propagation (HTTP and NATS headers).

One join is one trace: the browser sends a W3C `traceparent` on its join request and its
websocket join; rooms, the bus (NATS headers), signalling and the relay continue it.
Spans carry route templates, message types and keyed hashes only: never a room name, an
IP address or an exception's text (`record_exception=False` everywhere; a failed span
records the exception's type alone).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

log = logging.getLogger(__name__)
_configured = False

#: A W3C traceparent (version 00): what a client may send (trace-context §3.2).
TRACEPARENT: Final[re.Pattern[str]] = re.compile(
    r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
MAX_TRACEPARENT: Final[int] = 55


def setup_tracing(service: str, exporter: str = "none") -> trace.Tracer:
    """Install a tracer provider for `service`; `exporter` is none, console or otlp.

    otlp sends OTLP/HTTP (protobuf) to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces` (the exporter's own variables).
    """
    global _configured
    if not _configured:
        # with no exporter nothing is recorded (ALWAYS_OFF), yet trace context still
        # propagates through NATS headers from callers that do sample
        sampler = sampling.ALWAYS_OFF if exporter == "none" else sampling.ParentBased(
            sampling.ALWAYS_ON)
        provider = TracerProvider(
            resource=Resource.create({"service.name": f"parley-{service}"}), sampler=sampler)
        if exporter == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif exporter == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )
            except ImportError:
                log.warning("otlp exporter requested but opentelemetry-exporter-otlp is missing")
            else:
                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _configured = True
    return trace.get_tracer(f"parley.{service}")


def shutdown_tracing() -> None:
    """Export what is buffered and stop (a process about to end without atexit handlers)."""
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Return NATS headers carrying the current trace context (traceparent/tracestate)."""
    carrier: dict[str, str] = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context carried by a NATS message's (or HTTP request's) headers."""
    return propagate.extract(dict(headers or {}))


def traceparent_context(value: object) -> otel_context.Context | None:
    """The context of a client-sent `traceparent` string, or None when it is not one.

    Only the W3C version-00 form is taken (55 characters); no tracestate, no baggage.
    """
    if not isinstance(value, str) or len(value) != MAX_TRACEPARENT or not TRACEPARENT.match(value):
        return None
    return propagate.extract({"traceparent": value})


def current_traceparent() -> str | None:
    """The current span's context as a traceparent, when it is recorded (sampled)."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid or not ctx.trace_flags.sampled:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def recording() -> bool:
    """Whether the current span is recorded (so extra work for tracing is worth doing)."""
    return bool(trace.get_current_span().is_recording())


@contextmanager
def private_span(tracer: trace.Tracer, name: str, *, context: otel_context.Context | None = None,
                 kind: SpanKind = SpanKind.INTERNAL,
                 attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
    """A span that never records an exception's message or stack (they may hold PII).

    A failure sets the status to ERROR with the exception's type name only.
    """
    with tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes,
                                      record_exception=False,
                                      set_status_on_exception=False) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
