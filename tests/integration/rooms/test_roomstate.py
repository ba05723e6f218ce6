"""Room membership, expiry and lock in a real Redis, with an injected clock."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from services.common.roomstate import NotOwner, RoomFull, RoomLocked, RoomState

RK = "roomkeyAAAAAAAAAAAAAAAAA"


async def test_roomstate_member_expires_without_renewal(redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=30)
    for i in range(3):
        await rs.join(RK, f"p{i}", capacity=3, now=1000)
    with pytest.raises(RoomFull):
        await rs.join(RK, "late", capacity=3, now=1029)
    # p0 renewed by signalling, the others went silent
    assert await rs.renew(RK, "p0", now=1020)
    joined = await rs.join(RK, "late", capacity=3, now=1031)
    assert joined.members == 2
    assert set(await rs.members(RK, now=1031)) == {"p0", "late"}


async def test_roomstate_renew_after_expiry_fails(redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=30)
    await rs.join(RK, "a", capacity=3, now=1000)
    await rs.leave(RK, "a")
    assert not await rs.renew(RK, "a", now=1001)


async def test_roomstate_first_peer_owns_empty_room_resets(redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=30)
    first = await rs.join(RK, "a", capacity=3, now=1000)
    assert first.owner_key
    assert (await rs.join(RK, "b", capacity=3, now=1000)).owner_key is None
    await rs.lock(RK, owner_key=first.owner_key, password="pw")
    with pytest.raises(RoomLocked):
        await rs.join(RK, "c", capacity=3, now=1001)
    # everyone gone: the room starts afresh, unlocked, with a new owner
    fresh = await rs.join(RK, "d", capacity=3, now=2000)
    assert fresh.owner_key and fresh.owner_key != first.owner_key
    assert not await rs.is_locked(RK)
    with pytest.raises(NotOwner):
        await rs.lock(RK, owner_key=first.owner_key, password="x")


async def test_roomstate_rejoin_same_peer_not_counted_twice(redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=30)
    await rs.join(RK, "a", capacity=1, now=1000)
    assert (await rs.join(RK, "a", capacity=1, now=1001)).members == 1


async def test_roomstate_keys_are_opaque(redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=30)
    await rs.join(RK, "a", capacity=3, now=1000)
    keys = await redis.keys("*")
    assert keys and all(k.startswith("parley:room:{" + RK + "}:") for k in keys)
