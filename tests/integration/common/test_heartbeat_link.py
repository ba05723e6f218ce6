"""HeartbeatLink (services.common.heartbeat) on the session's real NATS: heartbeats out on
connect and on close, requests in to their handlers, a failing payload skipped."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from services.common.bus import Envelope, NatsBus
from services.common.heartbeat import HeartbeatLink
from services.common.infra import NatsServer

LOG = logging.getLogger("tests.heartbeat")
WAIT: Final[float] = 5.0


async def until(check: Callable[[], bool]) -> None:
    """Poll `check` until it holds or WAIT seconds pass (then fail)."""
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_heartbeat_link_heartbeats_and_requests(
    bus: NatsBus, nats_server: NatsServer
) -> None:
    beats: list[bytes] = []
    asked: list[bytes] = []

    async def got_beat(env: Envelope) -> None:
        beats.append(env.data)

    async def on_ask(msg: Any) -> None:
        asked.append(msg.data)

    await bus.subscribe("test.hb.beat", got_beat)
    await bus.nc.flush()
    link = HeartbeatLink(nats_server.url, name="hb-test", subject="test.hb.beat",
                         interval=60.0, payload=lambda: b'{"n":1}',
                         handlers={"test.hb.ask": on_ask}, log=LOG)
    assert not link.connected
    await link.publish()  # before connecting: a no-op, no error
    await link.start()
    try:
        await until(lambda: len(beats) == 1)  # the first heartbeat comes right on connect
        assert link.connected
        await bus.publish("test.hb.ask", b"ping")
        await until(lambda: asked == [b"ping"])
    finally:
        await link.close()
    await until(lambda: len(beats) == 2)  # the last heartbeat, sent by close()
    assert beats == [b'{"n":1}', b'{"n":1}']


async def test_heartbeat_link_skips_a_failing_payload(
    bus: NatsBus, nats_server: NatsServer
) -> None:
    beats: list[bytes] = []
    calls = 0

    async def got_beat(env: Envelope) -> None:
        beats.append(env.data)

    def payload() -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("no heartbeat this time")
        return b"ok"

    await bus.subscribe("test.hb.flaky", got_beat)
    await bus.nc.flush()
    link = HeartbeatLink(nats_server.url, name="hb-test", subject="test.hb.flaky",
                         interval=60.0, payload=payload, handlers={}, log=LOG)
    await link.start()
    try:
        await until(lambda: link.connected and calls == 1)
    finally:
        await link.close()  # the loop survived the failure; close still sends its last one
    await until(lambda: beats == [b"ok"])
