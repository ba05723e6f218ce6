"""Exactly-once: folds are idempotent, and a NATS restart mid-ingest loses no acked beacon."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator

import httpx
import nats
import pytest
import redis.asyncio as aioredis

from services.common.infra import NatsServer, RedisServer
from services.metrics.bus import BEACON_STREAM, PUBLISH_TIMEOUT
from services.metrics.store import AggregateStore, Fold, day_key
from tests.integration.metrics.conftest import metrics_env
from tests.integration.metrics.helpers import beacon, sessions_of, ua, wait_sessions
from tests.procs import start_service

TOTAL = 240
CONCURRENCY = 8


async def test_store_fold_idempotent_per_sequence(redis_server: RedisServer) -> None:
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    try:
        store = AggregateStore(client, retention_days=1, raw_max_age=3600)
        epoch = secrets.randbits(40)
        day = "2001-01-0" + str(secrets.randbelow(9) + 1)
        await client.delete(day_key(day))
        items = [Fold(day, epoch, seq, "cell-a" if seq % 2 else "cell-b") for seq in range(1, 8)]
        assert await store.fold(items) == 7
        assert await store.fold(items[2:5]) == 0  # redelivered: not recounted
        assert await store.fold([Fold(day, epoch + 1, 1, "cell-a")]) == 1  # new stream epoch
        assert await store.days([day]) == [{"cell-a": 5, "cell-b": 3}]
        assert 0 < await client.ttl(day_key(day)) <= 2 * 86400
    finally:
        await client.aclose()


def _restart_slowly(srv: NatsServer) -> None:
    argv = list(srv.proc.args) if srv.proc is not None else []  # type: ignore[arg-type]
    srv.kill()
    time.sleep(PUBLISH_TIMEOUT + 1)
    srv._spawn(argv)


@pytest.fixture
def own_nats() -> Iterator[NatsServer]:
    """A NATS of this test's own, since the test restarts it."""
    srv = NatsServer().start()
    yield srv
    srv.stop()


async def _send_until_acked(client: httpx.AsyncClient, body: dict[str, object], source: str,
                            stats: dict[str, int], third: asyncio.Event) -> None:
    data = json.dumps(body).encode()
    deadline = time.monotonic() + 40
    while True:
        try:
            r = await client.post("/beacon", content=data, headers={
                "Content-Type": "text/plain", "User-Agent": ua(906), "X-Forwarded-For": source})
            if r.status_code == 204:
                stats["acked"] += 1
                if stats["acked"] >= TOTAL // 3:
                    third.set()
                return
            assert r.status_code == 503, r.text
        except httpx.TransportError:
            pass
        stats["retries"] += 1
        assert time.monotonic() < deadline, "beacon never acknowledged"
        await asyncio.sleep(0.1)


async def test_nats_restart_mid_ingest_counts_each_acked_beacon_once(
    own_nats: NatsServer, redis_server: RedisServer
) -> None:
    before = await sessions_of(redis_server.url, "Firefox", 906)
    env = metrics_env(own_nats.url, redis_server.url, PARLEY_METRICS_BURST="100000",
                      PARLEY_METRICS_RATE="100000")
    sp = start_service("metrics", [], env)
    try:
        stats = {"acked": 0, "retries": 0}
        third = asyncio.Event()
        bodies = [beacon() for _ in range(TOTAL)]
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        for b in bodies:
            queue.put_nowait(b)

        async def worker(i: int) -> None:
            async with httpx.AsyncClient(base_url=sp.url, timeout=10) as client:
                while not queue.empty():
                    await _send_until_acked(client, queue.get_nowait(), f"198.51.100.{i}", stats,
                                            third)
                    await asyncio.sleep(0.005)

        workers = [asyncio.create_task(worker(i)) for i in range(CONCURRENCY)]
        await asyncio.wait_for(third.wait(), 30)
        # kill -9, stay down longer than the ingest's publish timeout (so some requests get
        # 503 and are retried with the same nonce), start again on the same JetStream data
        await asyncio.to_thread(_restart_slowly, own_nats)
        await asyncio.gather(*workers)
        assert stats["acked"] == TOTAL
        assert stats["retries"] > 0  # the outage really hit requests in flight
        assert await wait_sessions(redis_server.url, "Firefox", 906, before + TOTAL,
                                   within=40) == before + TOTAL
        await asyncio.sleep(1.5)  # let any redelivery arrive: it must not be recounted
        assert await sessions_of(redis_server.url, "Firefox", 906) == before + TOTAL
        nc = await nats.connect(own_nats.url)
        try:
            info = await nc.jetstream().stream_info(BEACON_STREAM)
            assert info.state.messages == TOTAL  # stored once each, across the restart
        finally:
            await nc.close()
    finally:
        sp.stop()


async def test_two_replicas_fold_each_beacon_once(
    own_nats: NatsServer, redis_server: RedisServer
) -> None:
    before = await sessions_of(redis_server.url, "Firefox", 907)
    env = metrics_env(own_nats.url, redis_server.url, PARLEY_METRICS_BURST="100000",
                      PARLEY_METRICS_RATE="100000", PARLEY_METRICS_BATCH="16")
    replicas = [start_service("metrics", [], env) for _ in range(2)]
    try:
        clients = [httpx.AsyncClient(base_url=sp.url) for sp in replicas]
        try:
            for i in range(120):
                r = await clients[i % 2].post("/beacon", content=json.dumps(beacon()).encode(),
                                              headers={"Content-Type": "text/plain",
                                                       "User-Agent": ua(907)})
                assert r.status_code == 204
        finally:
            for c in clients:
                await c.aclose()
        assert await wait_sessions(redis_server.url, "Firefox", 907, before + 120) == before + 120
        await asyncio.sleep(1)
        assert await sessions_of(redis_server.url, "Firefox", 907) == before + 120
    finally:
        for sp in replicas:
            sp.stop()
