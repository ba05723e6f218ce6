"""Embedded NATS/Redis start on free ports, answer, and leave nothing behind."""

from __future__ import annotations

import nats
import redis.asyncio as aioredis

from services.common.infra import NatsServer, RedisServer, find_binary


async def test_embedded_servers_answer_and_stop() -> None:
    n, r = NatsServer().start(), RedisServer().start()
    try:
        assert n.port not in (4222,) and r.port not in (6379,)
        nc = await nats.connect(n.url)
        info = await nc.jetstream().account_info()
        assert info is not None  # JetStream is on
        await nc.close()
        client = aioredis.from_url(r.url)
        assert await client.ping()
        await client.aclose()
    finally:
        n.stop()
        r.stop()
    assert n.proc is not None and n.proc.poll() is not None
    assert r.proc is not None and r.proc.poll() is not None
    assert not n.workdir.exists() and not r.workdir.exists()


def test_find_binary_locates_both() -> None:
    assert find_binary("nats-server")
    assert find_binary("redis-server")
