"""Shared fixtures: a real NATS (JetStream) and a real Redis per test session, on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from services.common.bus import NatsBus
from services.common.infra import NatsServer, RedisServer


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """A real nats-server -js started for this test session (never the machine's own)."""
    srv = NatsServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server started for this test session (never the machine's own)."""
    srv = RedisServer().start()
    yield srv
    srv.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client on the session's Redis, flushed before each test."""
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[NatsBus]:
    """A connected NatsBus on the session's NATS."""
    b = await NatsBus.connect(nats_server.url, name="test")
    yield b
    await b.close()
