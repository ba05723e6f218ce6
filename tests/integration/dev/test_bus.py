"""The NATS bus carries W3C trace context from publisher to subscriber."""

from __future__ import annotations

import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from services.common.bus import Envelope, NatsBus


async def test_bus_propagates_trace_context(bus: NatsBus) -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    got: asyncio.Queue[tuple[Envelope, int]] = asyncio.Queue()

    async def handler(env: Envelope) -> None:
        await got.put((env, trace.get_current_span().get_span_context().trace_id))

    await bus.subscribe("parley.test.trace", handler)
    with tracer.start_as_current_span("publish") as span:
        await bus.publish("parley.test.trace", b"x")
        trace_id = span.get_span_context().trace_id
    env, _ = await asyncio.wait_for(got.get(), 5)
    assert env.data == b"x"
    assert f"{trace_id:032x}" in env.headers["traceparent"]
