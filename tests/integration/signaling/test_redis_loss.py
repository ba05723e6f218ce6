"""Fault 4 with real processes: Redis loses its data (FLUSHALL, as a restart of a Redis that
persists nothing) under a locked call of two peers on two signalling replicas.

The call goes on (no socket closed, chat still flows), the replicas put back the room's
members, meta and presence, a stranger is refused throughout (503 while the room is being
put back, 403 after; never let in, never made owner), and new joins work.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis.asyncio as aioredis

from services.common.hashing import room_key
from services.common.infra import NatsServer, RedisServer
from services.signaling.presence import RedisPresence
from services.signaling.resume import Deadlines
from tests.integration.signaling.conftest import HASH_KEY, TOKEN_KEY, Peer, Replica
from tests.integration.signaling.test_membership import Stack, api_join, enter
from tests.procs import start_service

GRACE = 5.0  # PARLEY_REDIS_RECOVERY_GRACE for this module
DEADLINE = 30.0


@pytest.fixture(scope="module")
def stack(nats_server: NatsServer, redis_server: RedisServer) -> Iterator[Stack]:
    env = {"PARLEY_REDIS_RECOVERY_GRACE": str(GRACE)}
    rooms = start_service("rooms", [], {
        "PARLEY_NATS_URL": nats_server.url, "PARLEY_REDIS_URL": redis_server.url,
        "PARLEY_TOKEN_KEY": TOKEN_KEY, "PARLEY_HASH_KEY": HASH_KEY,
        "PARLEY_JOIN_BURST": "500", "PARLEY_JOIN_RATE": "100", **env})
    replicas = [Replica(nats_server.url, redis_server.url, env=dict(env)) for _ in range(2)]
    try:
        for r in replicas:
            r.start()
        yield Stack(rooms, replicas)
    finally:
        for r in replicas:
            r.stop()
        rooms.stop()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.rooms.url, timeout=10) as client:
        yield client


async def _chat_reaches(sender: Peer, receiver: Peer, text: str) -> None:
    await sender.send({"type": "chat", "text": text})
    while True:
        msg = await receiver.recv()
        if msg["type"] == "chat" and msg["text"] == text:
            return


async def test_redis_loss_locked_call_goes_on_and_stays_locked(
        stack: Stack, api: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    name = f"loss-{secrets.token_hex(4)}"
    rk = room_key(HASH_KEY, name)
    owner_info, a = await enter(api, stack.replicas[0].ws, name)
    _, b = await enter(api, stack.replicas[1].ws, name)
    assert owner_info["owner_key"]
    r = await api.post(f"/api/rooms/{name}/lock",
                       json={"owner_key": owner_info["owner_key"], "password": "s3cret"})
    assert r.status_code == 204, r.text
    # each replica tells its sockets once it holds a copy of the lock
    for peer in (a, b):
        assert (await peer.recv_type("room-state"))["locked"] is True

    await redis.flushall()  # Redis lost everything

    # A stranger hammers the room while the replicas put it back: never let in.
    seen: set[int] = set()
    deadline = time.monotonic() + DEADLINE
    presence = RedisPresence(redis, Deadlines())
    while time.monotonic() < deadline:
        r = await api.post(f"/api/rooms/{name}/join", json={})
        seen.add(r.status_code)
        assert r.status_code in (403, 503), r.text
        u = await api.post(f"/api/rooms/{name}/unlock", json={"owner_key": "x" * 24})
        assert u.status_code == 403, u.text
        back = await presence.snapshot(rk, now=time.time())
        if r.status_code == 403 and {a.peer_id, b.peer_id} <= back.keys():
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"room not put back within {DEADLINE}s (answers {seen})")

    # The call went on: both sockets open, chat flows both ways.
    await _chat_reaches(a, b, "after the loss")
    await _chat_reaches(b, a, "and back")
    # The owner is still the owner; a friend with the password gets in; a wrong one does not.
    r = await api.post(f"/api/rooms/{name}/join", json={"password": "guess"})
    assert r.status_code == 403
    friend = await api_join(api, name, password="s3cret")
    assert friend["owner_key"] is None and friend["room"]["locked"]
    r = await api.post(f"/api/rooms/{name}/unlock", json={"owner_key": owner_info["owner_key"]})
    assert r.status_code == 204, r.text
    # A new room opens once the recovery grace is over.
    while True:
        r = await api.post(f"/api/rooms/new-{secrets.token_hex(4)}/join", json={})
        if r.status_code == 200:
            break
        assert r.status_code == 503 and time.monotonic() < deadline, r.text
        await asyncio.sleep(0.2)
    for peer in (a, b):
        await peer.close()
