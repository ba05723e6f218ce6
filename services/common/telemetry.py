"""OpenTelemetry tracing setup and W3C trace-context propagation over NATS headers."""

from __future__ import annotations

import logging

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

log = logging.getLogger(__name__)
_configured = False


def setup_tracing(service: str, exporter: str = "none") -> trace.Tracer:
    """Install a tracer provider for `service`; `exporter` is none, console or otlp."""
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


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Return NATS headers carrying the current trace context (traceparent/tracestate)."""
    carrier: dict[str, str] = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_context(headers: dict[str, str] | None) -> object:
    """The trace context carried by a NATS message's headers, to start a child span in."""
    return propagate.extract(dict(headers or {}))
