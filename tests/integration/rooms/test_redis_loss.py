"""Fault 4 in a real Redis: it loses its data (FLUSHALL stands in for a restart of a Redis
that persists nothing) while a locked room is in a call. Rooms refuses to open the room
afresh until signalling puts back its members and meta; then the lock and the owner hold.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from services.common.roomstate import (
    EPOCH_KEY,
    RECOVERING_KEY,
    NotOwner,
    Recovering,
    RoomLocked,
    RoomState,
)

RK = "roomkeyBBBBBBBBBBBBBBBBB"
NOW = 1000.0


async def _locked_room(rooms: RoomState, sig: RoomState) -> str:
    """A room of two (owner `a`, `b`), locked by its owner; signalling keeps its meta."""
    owner = await rooms.join(RK, "a", capacity=4, now=NOW)
    assert owner.owner_key is not None
    await rooms.join(RK, "b", capacity=4, now=NOW)
    assert await sig.renew_many(RK, ["a", "b"], now=NOW) == []
    await rooms.lock(RK, owner_key=owner.owner_key, password="s3cret", now=NOW)
    return owner.owner_key


async def _lose(redis: aioredis.Redis) -> None:
    await redis.flushall()


async def test_redis_loss_locked_room_refused_until_restored_then_still_locked(
        redis: aioredis.Redis) -> None:
    rooms, sig = RoomState(redis), RoomState(redis)
    await rooms.sync_epoch()
    await sig.sync_epoch()
    owner_key = await _locked_room(rooms, sig)
    meta = (await sig.meta_many([RK]))[RK]
    assert meta["locked"] == "1" and meta["owner_peer"] == "a"

    await _lose(redis)
    # a stranger comes first: the room looks empty, but rooms knows Redis lost its data
    with pytest.raises(Recovering):
        await rooms.join(RK, "stranger", capacity=4, now=NOW + 1)
    assert 0 < await redis.pttl(RECOVERING_KEY) <= 15_000
    # signalling notices at its next heartbeat and puts back what it holds
    lost, recovering = await sig.sync_epoch()
    assert lost and recovering
    await sig.restore(RK, meta=meta, peers=["a", "b"], now=NOW + 2)

    with pytest.raises(RoomLocked):
        await rooms.join(RK, "stranger", capacity=4, now=NOW + 3)
    with pytest.raises(RoomLocked):
        await rooms.join(RK, "stranger", capacity=4, now=NOW + 3, password="guess",
                         owner_key="not-the-key")
    with pytest.raises(NotOwner):
        await rooms.unlock(RK, owner_key="not-the-key", now=NOW + 3)
    # the members' calls go on: their slots renew; the owner keeps its rights
    assert await sig.renew_many(RK, ["a", "b"], now=NOW + 4) == []
    await rooms.unlock(RK, owner_key=owner_key, now=NOW + 5)
    await rooms.lock(RK, owner_key=owner_key, password="new", now=NOW + 5)
    # and a friend with the password still gets in
    friend = await rooms.join(RK, "friend", capacity=4, now=NOW + 6, password="new")
    assert friend.owner_key is None and friend.members == 3


async def test_redis_loss_second_replica_never_overwrites_restored_meta(
        redis: aioredis.Redis) -> None:
    rooms, sig = RoomState(redis), RoomState(redis)
    await sig.sync_epoch()
    await _locked_room(rooms, sig)
    meta = (await sig.meta_many([RK]))[RK]
    await _lose(redis)
    await sig.sync_epoch()
    await sig.restore(RK, meta=meta, peers=["a"], now=NOW)
    # another replica's older copy (unlocked) comes second: the first one stands
    await sig.restore(RK, meta={**meta, "locked": "0"}, peers=["b"], now=NOW)
    assert await rooms.is_locked(RK)
    assert set(await rooms.members(RK, now=NOW)) == {"a", "b"}


async def test_redis_loss_fresh_redis_is_not_a_loss(redis: aioredis.Redis) -> None:
    await redis.delete(EPOCH_KEY)
    rooms = RoomState(redis)  # a new process on a new Redis: nothing was lost
    joined = await rooms.join(RK, "a", capacity=4, now=NOW)
    assert joined.owner_key is not None
    assert await redis.exists(RECOVERING_KEY) == 0


async def test_redis_loss_recovery_ends_after_grace(redis: aioredis.Redis) -> None:
    rooms = RoomState(redis, recovery_grace=1.0)
    await rooms.sync_epoch()
    await _lose(redis)
    with pytest.raises(Recovering):
        await rooms.join(RK, "a", capacity=4, now=NOW)
    # a room nobody re-registered was empty before: it opens once the grace is over
    await redis.delete(RECOVERING_KEY)  # stands in for its PX expiry
    assert (await rooms.join(RK, "a", capacity=4, now=NOW)).owner_key is not None


async def test_redis_loss_between_checks_takes_the_join_back(redis: aioredis.Redis) -> None:
    rooms = RoomState(redis)
    await rooms.sync_epoch()
    rooms.epoch = "an-epoch-from-before-the-loss"  # as if Redis lost it mid-join
    await redis.set(EPOCH_KEY, "an-epoch-from-before-the-loss")
    real_join = rooms._join

    async def join_then_lose(**kwargs: object) -> object:
        out = await real_join(**kwargs)  # type: ignore[arg-type]
        await redis.set(EPOCH_KEY, "the-new-redis")
        return out

    rooms._join = join_then_lose  # type: ignore[assignment]
    with pytest.raises(Recovering):
        await rooms.join(RK, "stranger", capacity=4, now=NOW)
    assert await rooms.members(RK, now=NOW) == []
    assert await redis.exists(RoomState.meta_key(RK)) == 0
