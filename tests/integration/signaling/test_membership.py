"""Room slots and sockets together: rooms and two signalling replicas on real NATS and Redis.

A socket lives only as long as its peer's slot in the room: leaving through rooms, or a slot
that ends any other way, closes it with 4410; a slot with no socket lapses after the join
grace; owner rights wait for the owner's socket.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from services.common.hashing import room_key
from services.common.infra import NatsServer, RedisServer
from services.common.roomstate import RoomState
from services.signaling.presence import RedisPresence
from services.signaling.resume import Deadlines
from tests.integration.signaling.conftest import (
    HASH_KEY,
    TOKEN_KEY,
    Peer,
    Replica,
    open_peer,
)
from tests.procs import ServiceProcess, start_service

JOIN_GRACE = 3.0
ENDED = (4410, "membership ended")


@dataclass
class Stack:
    rooms: ServiceProcess
    replicas: list[Replica]


@pytest.fixture(scope="module")
def stack(nats_server: NatsServer, redis_server: RedisServer) -> Iterator[Stack]:
    rooms = start_service("rooms", [], {
        "PARLEY_NATS_URL": nats_server.url, "PARLEY_REDIS_URL": redis_server.url,
        "PARLEY_TOKEN_KEY": TOKEN_KEY, "PARLEY_HASH_KEY": HASH_KEY,
        "PARLEY_JOIN_GRACE": str(JOIN_GRACE), "PARLEY_JOIN_BURST": "500",
        "PARLEY_JOIN_RATE": "100"})
    replicas = [Replica(nats_server.url, redis_server.url) for _ in range(2)]
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


def new_room() -> str:
    return f"member-{secrets.token_hex(4)}"


async def api_join(api: httpx.AsyncClient, name: str, **body: Any) -> dict[str, Any]:
    r = await api.post(f"/api/rooms/{name}/join", json=body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def api_leave(api: httpx.AsyncClient, name: str, info: dict[str, Any]) -> None:
    r = await api.post(f"/api/rooms/{name}/leave", json={"token": info["token"]})
    assert r.status_code == 204


async def open_join(url: str, name: str, info: dict[str, Any]) -> Peer:
    """Open a socket and send `join` with the ticket rooms gave; nothing read yet."""
    peer = await open_peer(url)
    await peer.send({"type": "join", "token": info["token"], "room": name})
    return peer


async def ws_join(url: str, name: str, info: dict[str, Any]) -> Peer:
    """Open a socket, join with the ticket rooms gave, and read the welcome."""
    peer = await open_join(url, name, info)
    welcome = await peer.recv()
    assert welcome["type"] == "welcome", welcome
    peer.peer_id, peer.resume_key, peer.welcome = (welcome["peer_id"], welcome["resume_key"],
                                                   welcome)
    return peer


async def enter(api: httpx.AsyncClient, url: str, name: str,
                **body: Any) -> tuple[dict[str, Any], Peer]:
    info = await api_join(api, name, **body)
    return info, await ws_join(url, name, info)


async def test_membership_leave_through_rooms_closes_socket_4410(
        stack: Stack, api: httpx.AsyncClient) -> None:
    name = new_room()
    a_info, a = await enter(api, stack.replicas[0].ws, name)
    _, b = await enter(api, stack.replicas[1].ws, name)
    await api_leave(api, name, a_info)
    assert await a.closed() == ENDED
    assert await b.recv_type("peer-left") == {"type": "peer-left", "peer_id": a.peer_id,
                                              "reason": "left"}
    await b.close()


async def test_membership_room_never_holds_more_sockets_than_capacity(
        stack: Stack, api: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    name = new_room()
    inside = [await enter(api, stack.replicas[i % 2].ws, name) for i in range(6)]
    assert (await api.post(f"/api/rooms/{name}/join", json={})).status_code == 409
    for round_ in range(3):
        info, sock = inside.pop(0)
        await api_leave(api, name, info)
        assert await sock.closed() == ENDED
        newcomer = await enter(api, stack.replicas[round_ % 2].ws, name)
        assert len(newcomer[1].welcome["peers"]) == 5
        inside.append(newcomer)
    live = await RedisPresence(redis, Deadlines()).snapshot(
        room_key(HASH_KEY, name), now=time.time())
    assert sorted(live) == sorted(sock.peer_id for _, sock in inside)
    for _, sock in inside:
        await sock.close()


async def test_membership_ended_without_event_closes_socket(
        stack: Stack, api: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    name = new_room()
    a_info, a = await enter(api, stack.replicas[0].ws, name)
    _, b = await enter(api, stack.replicas[1].ws, name)
    # the slot ends behind signalling's back (no event): its membership check finds out
    assert await RoomState(redis).leave(room_key(HASH_KEY, name), a_info["peer_id"])
    assert await a.closed() == ENDED
    assert (await b.recv_type("peer-left"))["peer_id"] == a.peer_id
    await b.close()


async def test_membership_expired_room_starts_afresh_without_the_old_socket(
        stack: Stack, api: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    name = new_room()
    old_info, old = await enter(api, stack.replicas[0].ws, name)
    # its slot lapsed (as if signalling could not renew it for a minute)
    members = RoomState.members_key(room_key(HASH_KEY, name))
    await redis.zadd(members, {old_info["peer_id"]: time.time() - 1})
    fresh_info = await api_join(api, name)
    assert fresh_info["owner_key"] and fresh_info["owner_key"] != old_info["owner_key"]
    assert await old.closed() == ENDED
    fresh = await ws_join(stack.replicas[1].ws, name, fresh_info)
    assert (fresh.welcome["peers"], fresh.welcome["pending"]) == ([], [])
    await fresh.close()


async def test_membership_renewal_closes_socket_of_a_non_member(
        nats_server: NatsServer, redis_server: RedisServer, stack: Stack,
        api: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    # heartbeats (and their membership check) far apart: only the renewal can find out
    replica = Replica(nats_server.url, redis_server.url, env={
        "PARLEY_HEARTBEAT_INTERVAL": "600", "PARLEY_MEMBER_RENEW_INTERVAL": "0.5"}).start()
    try:
        name = new_room()
        a_info, a = await enter(api, replica.ws, name)
        assert await RoomState(redis).leave(room_key(HASH_KEY, name), a_info["peer_id"])
        assert await a.closed() == ENDED
    finally:
        replica.stop()


async def test_membership_no_resume_after_leaving_through_rooms(
        stack: Stack, api: httpx.AsyncClient) -> None:
    name = new_room()
    a_info, a = await enter(api, stack.replicas[0].ws, name)
    a.drop()  # the page goes away; its unload handler still reaches rooms
    await api_leave(api, name, a_info)
    back = await open_peer(stack.replicas[1].ws)
    await back.send({"type": "join", "token": a_info["token"], "room": name,
                     "resume": {"peer_id": a.peer_id, "key": a.resume_key}})
    assert await back.closed() == (4410, "membership ended; join again through rooms")


async def test_membership_fresh_owner_never_shares_room_with_stale_peer(
        stack: Stack, api: httpx.AsyncClient) -> None:
    name = new_room()
    owner_info, owner = await enter(api, stack.replicas[0].ws, name)
    assert owner_info["owner_key"]
    stale_info, stale = await enter(api, stack.replicas[1].ws, name)
    await api_leave(api, name, stale_info)
    await api_leave(api, name, owner_info)
    assert await stale.closed() == ENDED
    assert await owner.closed() == ENDED
    fresh_info, fresh = await enter(api, stack.replicas[1].ws, name)
    assert fresh_info["owner_key"]
    assert (fresh.welcome["peers"], fresh.welcome["pending"]) == ([], [])
    await fresh.close()


async def test_membership_slot_without_socket_shown_then_released(
        stack: Stack, api: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    name = new_room()
    ghost = await api_join(api, name)  # through the API only: no socket, ever
    _, seen = await enter(api, stack.replicas[0].ws, name)
    assert seen.welcome["peers"] == []
    assert seen.welcome["pending"] == [ghost["peer_id"]]
    late = await api_join(api, name)
    assert await seen.recv_type("peer-pending") == {"type": "peer-pending",
                                                    "peer_id": late["peer_id"]}
    # past the join grace both slots are released and everyone is told
    gone = {(await seen.recv_type("peer-left", timeout=JOIN_GRACE + 10))["peer_id"]
            for _ in range(2)}
    assert gone == {ghost["peer_id"], late["peer_id"]}
    assert await RoomState(redis).members(room_key(HASH_KEY, name), now=time.time()) == [
        seen.peer_id]
    too_late = await open_join(stack.replicas[1].ws, name, ghost)
    assert (await too_late.closed())[0] == 4409
    await seen.close()


async def test_membership_pending_peer_becomes_joined(stack: Stack,
                                                     api: httpx.AsyncClient) -> None:
    name = new_room()
    _, first = await enter(api, stack.replicas[0].ws, name)
    second_info = await api_join(api, name)
    assert (await first.recv_type("peer-pending"))["peer_id"] == second_info["peer_id"]
    second = await ws_join(stack.replicas[1].ws, name, second_info)
    assert second.welcome["peers"] == [{"peer_id": first.peer_id, "media": {
        "audio": True, "video": True, "screen": False}}]
    assert (await first.recv_type("peer-joined"))["peer_id"] == second.peer_id
    for p in (first, second):
        await p.close()


async def test_membership_owner_rights_wait_for_owner_socket(stack: Stack,
                                                             api: httpx.AsyncClient) -> None:
    name = new_room()
    owner_info = await api_join(api, name)
    key = owner_info["owner_key"]
    assert key
    lock = {"owner_key": key, "password": "open sesame"}
    r = await api.post(f"/api/rooms/{name}/lock", json=lock)
    assert (r.status_code, r.json()) == (409, {
        "detail": "the owner's rights take effect once the owner is in the call"})
    owner = await ws_join(stack.replicas[0].ws, name, owner_info)
    assert (await api.post(f"/api/rooms/{name}/lock", json=lock)).status_code == 204
    _, guest = await enter(api, stack.replicas[1].ws, name, password="open sesame")
    await api_leave(api, name, owner_info)
    assert await owner.closed() == ENDED
    r = await api.post(f"/api/rooms/{name}/unlock", json={"owner_key": key})
    assert r.status_code == 409
    await guest.close()


async def test_membership_owner_key_follows_owner_to_new_peer(stack: Stack,
                                                              api: httpx.AsyncClient) -> None:
    name = new_room()
    owner_info, owner = await enter(api, stack.replicas[0].ws, name)
    key = owner_info["owner_key"]
    _, guest = await enter(api, stack.replicas[1].ws, name)
    await owner.send({"type": "leave"})  # a reload: the page leaves, then joins again
    assert (await owner.closed())[0] == 1000
    await api_leave(api, name, owner_info)
    again_info, again = await enter(api, stack.replicas[1].ws, name, owner_key=key)
    assert again_info["owner_key"] == key
    r = await api.post(f"/api/rooms/{name}/lock", json={"owner_key": key, "password": "pw"})
    assert r.status_code == 204
    for p in (guest, again):
        await p.close()
