"""Trace context helpers: client traceparents are checked; spans never keep exception text."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from services.common.telemetry import private_span, traceparent_context

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_traceparent_context_takes_a_w3c_value() -> None:
    ctx = traceparent_context(PARENT)
    assert ctx is not None
    span = trace.get_current_span(ctx).get_span_context()
    assert (span.trace_id, span.span_id) == (0x0AF7651916CD43DD8448EB211C80319C,
                                             0xB7AD6B7169203331)


@pytest.mark.parametrize("value", [None, 7, "", PARENT + "x", PARENT.upper(),
                                   "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                   "00-" + "0" * 32 + "-b7ad6b7169203331-01",
                                   "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01"])
def test_traceparent_context_ignores_anything_else(value: object) -> None:
    assert traceparent_context(value) is None


def test_private_span_keeps_the_exception_type_only() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with pytest.raises(ValueError), private_span(tracer, "work"):
        raise ValueError("room secret-room from 203.0.113.7")
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ValueError"
    assert list(span.events) == []
