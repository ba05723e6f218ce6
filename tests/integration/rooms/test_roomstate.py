"""Room membership, expiry and lock in a real Redis, with an injected clock."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from services.common.roomstate import (
    EPOCH_KEY,
    NotOwner,
    OwnerAbsent,
    RoomFull,
    RoomLocked,
    RoomState,
)

RK = "roomkeyAAAAAAAAAAAAAAAAA"


async def test_roomstate_member_expires_without_renewal(redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=30, join_grace=30)
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
    assert await rs.renew(RK, "a", now=1000)  # the owner's socket joined
    await rs.lock(RK, owner_key=first.owner_key, password="pw", now=1000)
    with pytest.raises(RoomLocked):
        await rs.join(RK, "c", capacity=3, now=1001)
    # everyone gone: the room starts afresh, unlocked, with a new owner
    fresh = await rs.join(RK, "d", capacity=3, now=2000)
    assert fresh.owner_key and fresh.owner_key != first.owner_key
    assert not await rs.is_locked(RK)
    with pytest.raises(NotOwner):
        await rs.lock(RK, owner_key=first.owner_key, password="x", now=2000)


async def test_roomstate_rejoin_same_peer_not_counted_twice(redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=30)
    await rs.join(RK, "a", capacity=1, now=1000)
    assert (await rs.join(RK, "a", capacity=1, now=1001)).members == 1


async def test_roomstate_keys_are_opaque(redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=30)
    await rs.join(RK, "a", capacity=3, now=1000)
    keys = await redis.keys("*")
    # the room's keys, and this Redis's epoch (a random value; no name in either)
    assert keys and all(k.startswith("parley:room:{" + RK + "}:") or k == EPOCH_KEY
                        for k in keys)


async def test_roomstate_slot_without_socket_released_after_join_grace(
        redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=60, join_grace=15)
    await rs.join(RK, "api-only", capacity=2, now=1000)
    await rs.join(RK, "with-socket", capacity=2, now=1000)
    assert await rs.renew(RK, "with-socket", now=1010)  # signalling admitted its socket
    with pytest.raises(RoomFull):
        await rs.join(RK, "late", capacity=2, now=1014)
    assert await rs.members(RK, now=1016) == ["with-socket"]
    assert (await rs.join(RK, "late", capacity=2, now=1016)).members == 2


async def test_roomstate_renew_after_join_grace_fails(redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=60, join_grace=15)
    await rs.join(RK, "a", capacity=3, now=1000)
    assert not await rs.renew(RK, "a", now=1015)  # an ended slot is never brought back
    assert await rs.members(RK, now=1015) == []


async def test_roomstate_renew_many_names_the_peers_gone(redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=60, join_grace=15)
    for peer in ("a", "b", "c"):
        await rs.join(RK, peer, capacity=3, now=1000)
    await rs.leave(RK, "b")
    assert await rs.renew_many(RK, ["a", "b", "c", "never"], now=1001) == ["b", "never"]
    assert await rs.members_many([RK, "otherroomAAAAAAAAAAAAAAA"], now=1001) == {
        RK: {"a", "c"}, "otherroomAAAAAAAAAAAAAAA": set()}


async def test_roomstate_owner_rights_need_the_owners_socket(redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=60, join_grace=15)
    owner = await rs.join(RK, "owner", capacity=3, now=1000)
    assert owner.owner_key
    with pytest.raises(OwnerAbsent):  # joined through the API only
        await rs.lock(RK, owner_key=owner.owner_key, password="pw", now=1001)
    await rs.join(RK, "guest", capacity=3, now=1001)
    assert await rs.renew(RK, "guest", now=1001)  # someone else's socket does not count
    with pytest.raises(OwnerAbsent):
        await rs.lock(RK, owner_key=owner.owner_key, password="pw", now=1001)
    assert await rs.renew(RK, "owner", now=1002)
    await rs.lock(RK, owner_key=owner.owner_key, password="pw", now=1002)
    assert await rs.is_locked(RK)
    await rs.leave(RK, "owner")
    with pytest.raises(OwnerAbsent):  # gone: the key no longer works
        await rs.unlock(RK, owner_key=owner.owner_key, now=1003)
    with pytest.raises(NotOwner):
        await rs.unlock(RK, owner_key="not-the-key", now=1003)


async def test_roomstate_owner_key_moves_to_the_owners_new_peer(redis: aioredis.Redis) -> None:
    rs = RoomState(redis, member_ttl=60, join_grace=15)
    owner = await rs.join(RK, "owner", capacity=3, now=1000)
    assert owner.owner_key
    assert await rs.renew(RK, "owner", now=1000)
    await rs.join(RK, "guest", capacity=3, now=1000)
    await rs.leave(RK, "owner")  # a reload: the old peer leaves, a new one joins
    wrong = await rs.join(RK, "stranger", capacity=3, now=1001, owner_key="guessed")
    assert wrong.owner_key is None
    back = await rs.join(RK, "owner-again", capacity=3, now=1001, owner_key=owner.owner_key)
    assert back.owner_key == owner.owner_key
    with pytest.raises(OwnerAbsent):
        await rs.lock(RK, owner_key=owner.owner_key, password="pw", now=1002)
    assert await rs.renew(RK, "owner-again", now=1002)
    await rs.lock(RK, owner_key=owner.owner_key, password="pw", now=1002)


async def test_roomstate_pin_sfu_keeps_a_live_pin_and_resets_with_the_room(
        redis: aioredis.Redis) -> None:
    rs = RoomState(redis)
    await rs.join("rk-sfu", "a", capacity=20, now=1000.0)
    assert await rs.media("rk-sfu") == (None, None)
    assert await rs.pin_sfu("rk-sfu", "sfu-1", replace=None) == "sfu-1"
    # another replica's pick loses to the live pin; a dead one is replaced
    assert await rs.pin_sfu("rk-sfu", "sfu-2", replace=None) == "sfu-1"
    assert await rs.pin_sfu("rk-sfu", "sfu-2", replace="sfu-1") == "sfu-2"
    assert await rs.media("rk-sfu") == ("sfu", "sfu-2")
    # the room empties: the next people start as a mesh again
    await rs.leave("rk-sfu", "a")
    await rs.join("rk-sfu", "b", capacity=20, now=1001.0)
    assert await rs.media("rk-sfu") == (None, None)
