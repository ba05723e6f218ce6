"""Readiness follows NATS and Redis: a rooms process says so when one is gone."""

from __future__ import annotations

import secrets

import httpx

from services.common.infra import NatsServer, RedisServer
from tests.procs import start_service


async def test_readyz_fails_when_redis_is_gone() -> None:
    nats_srv, redis_srv = NatsServer().start(), RedisServer().start()
    env = {"PARLEY_NATS_URL": nats_srv.url, "PARLEY_REDIS_URL": redis_srv.url,
           "PARLEY_TOKEN_KEY": secrets.token_urlsafe(32),
           "PARLEY_HASH_KEY": secrets.token_urlsafe(32)}
    sp = start_service("rooms", [], env)
    try:
        async with httpx.AsyncClient(base_url=sp.url, timeout=15) as c:
            assert (await c.get("/readyz")).status_code == 200
            redis_srv.stop()
            r = await c.get("/readyz")
            assert r.status_code == 503
            assert r.json() == {"ready": False, "nats": True, "redis": False, "relays": 0,
                                "sfus": 0}
            assert (await c.get("/healthz")).status_code == 200
    finally:
        sp.stop()
        redis_srv.stop()
        nats_srv.stop()
