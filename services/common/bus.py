"""The event bus between services: a `Bus` protocol, its NATS implementation, a loopback.

`NatsBus.connect()` reconnects forever, exposes JetStream, carries W3C trace context in
message headers, and `close()` drains before closing (the nats.py graceful-shutdown shape).
`LoopbackBus` is an in-process fake for unit tests of protocol cores; integration tests
use the real NATS.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from services.common.access import inbox_prefix_for
from services.common.telemetry import extract_context, inject_headers, private_span, recording

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("parley.bus")


@dataclass(slots=True)
class Envelope:
    """A message received from the bus."""

    subject: str
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)
    reply: str = ""


Handler = Callable[[Envelope], Awaitable[None]]


class Subscription(Protocol):
    async def unsubscribe(self) -> None: ...


class Bus(Protocol):
    """Publish/subscribe between services."""

    async def publish(self, subject: str, data: bytes) -> None: ...

    async def subscribe(self, subject: str, handler: Handler) -> Subscription: ...

    async def close(self) -> None: ...


class NatsBus:
    """The production bus: NATS core pub/sub plus JetStream."""

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()

    @classmethod
    async def connect(cls, url: str, *, name: str, connect_timeout: float = 5.0) -> NatsBus:
        """Connect to `url` (comma-separated servers); reconnect forever once connected."""

        async def on_error(exc: Exception) -> None:
            log.warning("nats error: %s", type(exc).__name__)

        async def on_disconnect() -> None:
            if not (nc.is_closed or nc.is_draining):
                log.warning("nats disconnected; reconnecting")

        async def on_reconnect() -> None:
            log.info("nats reconnected")

        nc = await nats.connect(
            servers=[s.strip() for s in url.split(",") if s.strip()],
            name=f"parley-{name}",
            connect_timeout=connect_timeout,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            allow_reconnect=True,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            inbox_prefix=inbox_prefix_for(url),
        )
        return cls(nc)

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    async def publish(self, subject: str, data: bytes) -> None:
        """Publish with the current trace context in the headers; inside a recorded trace,
        as a producer span of its own (subjects carry keyed hashes only)."""
        if not recording():  # the hot path of untraced messages: no span at all
            await self.nc.publish(subject, data, headers=inject_headers())
            return
        with private_span(_tracer, "bus publish", kind=SpanKind.PRODUCER,
                          attributes=_messaging(subject)):
            await self.nc.publish(subject, data, headers=inject_headers())

    async def subscribe(self, subject: str, handler: Handler, *, queue: str = "") -> Any:
        async def cb(msg: Msg) -> None:
            headers = dict(msg.headers or {})
            envelope = Envelope(msg.subject, msg.data, headers, msg.reply or "")
            if "traceparent" not in headers:  # heartbeats and other untraced traffic
                await _handle(handler, envelope)
                return
            # the span continues the publisher's trace (W3C traceparent in the headers)
            with private_span(_tracer, "bus receive", context=extract_context(headers),
                              kind=SpanKind.CONSUMER, attributes=_messaging(msg.subject)):
                await _handle(handler, envelope)

        return await self.nc.subscribe(subject, queue=queue, cb=cb)

    async def flush(self, timeout: int = 2) -> None:  # noqa: ASYNC109 - nats.py API
        await self.nc.flush(timeout=timeout)

    async def request(self, subject: str, data: bytes, *,
                      timeout: float) -> bytes:  # noqa: ASYNC109 - nats.py API
        """One request/reply (the reply comes to this user's own inbox prefix).

        Raises:
            TimeoutError: no answer within `timeout` seconds (nats' own timeout, mapped).
        """
        try:
            msg = await self.nc.request(subject, data, timeout=timeout, headers=inject_headers())
        except nats.errors.TimeoutError as exc:
            raise TimeoutError("no reply") from exc
        except nats.errors.NoRespondersError as exc:
            raise TimeoutError("no responder") from exc
        return bytes(msg.data)

    async def close(self) -> None:
        """Drain subscriptions and pending publishes, then close."""
        if self.nc.is_closed:
            return
        try:
            await asyncio.wait_for(self.nc.drain(), timeout=5)
        except Exception:
            await self.nc.close()


def _messaging(subject: str) -> dict[str, str]:
    return {"messaging.system": "nats", "messaging.destination.name": subject}


async def _handle(handler: Handler, envelope: Envelope) -> None:
    try:
        await handler(envelope)
    except Exception:
        log.exception("handler for a bus message failed")


class _LoopbackSub:
    def __init__(self, bus: LoopbackBus, pattern: str, handler: Handler) -> None:
        self.bus, self.pattern, self.handler = bus, pattern, handler

    async def unsubscribe(self) -> None:
        if self in self.bus.subs:
            self.bus.subs.remove(self)


def _matches(pattern: str, subject: str) -> bool:
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or not (tok == "*" or tok == s[i]):
            return False
    return len(p) == len(s)


class LoopbackBus:
    """An in-process fake bus (NATS subject wildcards `*` and `>`), for unit tests only."""

    def __init__(self) -> None:
        self.subs: list[_LoopbackSub] = []
        self.published: list[Envelope] = []

    async def publish(self, subject: str, data: bytes) -> None:
        env = Envelope(subject, data, inject_headers())
        self.published.append(env)
        for sub in list(self.subs):
            if _matches(sub.pattern, subject):
                await sub.handler(env)

    async def subscribe(self, subject: str, handler: Handler) -> _LoopbackSub:
        sub = _LoopbackSub(self, subject, handler)
        self.subs.append(sub)
        return sub

    async def close(self) -> None:
        self.subs.clear()
