"""Room state in Redis, shared by rooms (join, lock) and signalling (renew, leave).

Per room, under the opaque room key: `members` (sorted set peer id → expiry) and `meta`
(hash: owner key hash, the owner's peer id, whether the owner's socket has joined, lock flag,
password hash, relay id). Joins are one Lua script, so capacity holds under any number of
concurrent joins across replicas. A slot taken through rooms lasts `join_grace` seconds; once
signalling admits the peer's socket it renews the slot (`member_ttl`) while the socket lives.
A slot with no socket is therefore released after the grace, and owner rights (lock,
unlock) take effect only once the owner's socket has joined and while the owner is a member.

Redis losing its data (a restart of the bundled Redis, which persists nothing) must never open
a locked room to a stranger. A global `epoch` key marks this Redis's life: whoever finds it
gone while remembering an earlier one (`sync_epoch`) knows the data was lost and sets
`recovering` for `recovery_grace` seconds. Meanwhile a join that would open a room afresh is
refused (`Recovering`: it may be a live room whose members are not re-registered yet), and
signalling re-asserts each live room's members and meta (`restore`) from what it held before
the loss. See docs/resilience.md, fault 4.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis

from services.common.redisclient import key

DEFAULT_MEMBER_TTL: Final[float] = 60.0
DEFAULT_JOIN_GRACE: Final[float] = 15.0
DEFAULT_RECOVERY_GRACE: Final[float] = 15.0
EPOCH_KEY: Final[str] = "parley:room:epoch"  # under rooms' and signalling's ACL pattern
RECOVERING_KEY: Final[str] = "parley:room:recovering"
#: The meta fields signalling keeps a copy of, to put back after a loss.
META_FIELDS: Final[tuple[str, ...]] = ("owner", "owner_peer", "owner_here", "locked", "pw",
                                       "relay")
ROOM_IDLE_TTL: Final[int] = 24 * 3600
MAX_PASSWORD_LENGTH: Final[int] = 256
_SCRYPT: Final[dict[str, int]] = {"n": 2**14, "r": 8, "p": 1}

_JOIN: Final[str] = """
local members, meta = KEYS[1], KEYS[2]
local now, ttl, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local peer, idle, owner_hash, pw = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
local presented, recovering = ARGV[8], ARGV[9]
redis.call('ZREMRANGEBYSCORE', members, '-inf', now)
local owner = 0
if redis.call('ZCARD', members) == 0 then
  if recovering == '1' then
    -- Redis lost its data moments ago: this may be a live (locked) room whose members
    -- signalling has not re-registered yet; never open it afresh meanwhile
    return {-3, 0}
  end
  -- an empty room starts afresh: the next peer owns it and any old lock is gone
  redis.call('HSET', meta, 'owner', owner_hash, 'owner_peer', peer, 'locked', '0')
  redis.call('HDEL', meta, 'pw', 'owner_here', 'path', 'sfu')
  owner = 1
elseif redis.call('HGET', meta, 'locked') == '1' and redis.call('HGET', meta, 'pw') ~= pw then
  return {-2, 0}
end
local held = redis.call('ZSCORE', members, peer)
if held == false and redis.call('ZCARD', members) >= cap then
  return {-1, 0}
end
if owner == 0 and presented ~= '' and redis.call('HGET', meta, 'owner') == presented then
  -- the owner came back as a new peer (a reload): its rights follow it once it joins
  redis.call('HSET', meta, 'owner_peer', peer)
  redis.call('HDEL', meta, 'owner_here')
  owner = 2
end
if held == false or tonumber(held) < now + ttl then
  redis.call('ZADD', members, now + ttl, peer)
end
redis.call('EXPIRE', members, idle)
redis.call('EXPIRE', meta, idle)
return {owner, redis.call('ZCARD', members)}
"""

_RENEW: Final[str] = """
-- the peer's socket is in the room: extend its slot, unless it has ended (left, expired)
local members, meta, peer = KEYS[1], KEYS[2], ARGV[3]
local held = redis.call('ZSCORE', members, peer)
if held == false or tonumber(held) <= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', members, tonumber(ARGV[2]), peer)
redis.call('EXPIRE', members, tonumber(ARGV[4]))
if redis.call('HGET', meta, 'owner_peer') == peer then
  redis.call('HSET', meta, 'owner_here', '1')
end
return 1
"""


_EPOCH: Final[str] = """
-- this Redis's life: a missing epoch is a new Redis; if the caller knew an older one,
-- the data was lost and rooms must fail closed for ARGV[3] ms
local cur = redis.call('GET', KEYS[1])
if cur then return {cur, redis.call('PTTL', KEYS[2])} end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  return {ARGV[1], tonumber(ARGV[3])}
end
return {ARGV[1], -2}
"""

_RESTORE: Final[str] = """
-- signalling puts back a live room after a loss: its meta (unless already back) and the
-- members whose sockets it holds
local members, meta = KEYS[1], KEYS[2]
local upto, idle, nmeta = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if nmeta > 0 and redis.call('HEXISTS', meta, 'owner') == 0 then
  for i = 4, 3 + 2 * nmeta, 2 do redis.call('HSET', meta, ARGV[i], ARGV[i + 1]) end
end
for i = 4 + 2 * nmeta, #ARGV do
  local held = redis.call('ZSCORE', members, ARGV[i])
  if held == false or tonumber(held) < upto then redis.call('ZADD', members, upto, ARGV[i]) end
end
redis.call('EXPIRE', members, idle)
redis.call('EXPIRE', meta, idle)
return 1
"""

_UNDO: Final[str] = """
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[2] == '1' and redis.call('ZCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
return 1
"""


class RoomFull(Exception):
    """The room has `capacity` live members already."""


class RoomLocked(Exception):
    """The room is locked and the password given is missing or wrong."""


class Recovering(Exception):
    """Redis lost its data moments ago and this room is not re-registered: try again soon."""


class NotOwner(Exception):
    """The owner key given does not match the room's."""


class OwnerAbsent(Exception):
    """The owner key matches, but the owner's socket has not joined (or the owner left)."""


@dataclass(frozen=True, slots=True)
class JoinResult:
    owner_key: str | None
    members: int


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    """scrypt hash with a random salt, as `salt$hash` in hex."""
    salt = os.urandom(16)
    h = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"{salt.hex()}${h.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a `hash_password` result."""
    try:
        salt_hex, h_hex = stored.split("$", 1)
        h = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), dklen=32, **_SCRYPT)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(h.hex(), h_hex)


class RoomState:
    """Room membership, ownership and lock for one Redis."""

    def __init__(self, redis: aioredis.Redis, *, member_ttl: float = DEFAULT_MEMBER_TTL,
                 join_grace: float = DEFAULT_JOIN_GRACE,
                 recovery_grace: float = DEFAULT_RECOVERY_GRACE) -> None:
        self.redis = redis
        self.member_ttl = member_ttl
        self.join_grace = join_grace
        self.recovery_grace = recovery_grace
        self.epoch: str | None = None  # the epoch this process last saw
        self._join = redis.register_script(_JOIN)
        self._renew = redis.register_script(_RENEW)
        self._epoch = redis.register_script(_EPOCH)
        self._restore = redis.register_script(_RESTORE)
        self._undo = redis.register_script(_UNDO)

    async def sync_epoch(self) -> tuple[bool, bool]:
        """Check this Redis's epoch against the one last seen (making it if missing).

        Returns:
            (lost, recovering): whether Redis lost its data since this process last looked
            (its epoch changed), and whether rooms must still fail closed for rooms with no
            members (`recovering` is set for `recovery_grace` seconds by whoever first
            finds the epoch gone while knowing an older one).
        """
        out = await self._epoch(keys=[EPOCH_KEY, RECOVERING_KEY], args=[
            secrets.token_hex(8), self.epoch or "", int(self.recovery_grace * 1000)])
        epoch, ttl = str(out[0]), int(out[1])
        lost = self.epoch is not None and epoch != self.epoch
        self.epoch = epoch
        return lost, ttl > 0

    @staticmethod
    def members_key(rk: str) -> str:
        return key("room", rk, "members")

    @staticmethod
    def meta_key(rk: str) -> str:
        return key("room", rk, "meta")

    async def is_locked(self, rk: str) -> bool:
        return await self.redis.hget(self.meta_key(rk), "locked") == "1"

    async def join(
        self, rk: str, peer_id: str, *, capacity: int, now: float, password: str | None = None,
        owner_key: str | None = None,
    ) -> JoinResult:
        """Add `peer_id` to the room atomically, holding its slot for `join_grace` seconds.

        Returns the owner key when this peer is the first one (it alone can lock the room,
        once its socket has joined), or when it presents the room's current `owner_key`
        (the owner coming back as a new peer: the rights move to it).

        Raises:
            RoomFull: capacity reached.
            RoomLocked: locked and `password` is not the room's password.
            Recovering: Redis lost its data moments ago and the room has no member yet.
        """
        _, recovering = await self.sync_epoch()
        proof = ""
        stored = await self.redis.hget(self.meta_key(rk), "pw")
        if stored and password is not None and check_password(password, str(stored)):
            proof = str(stored)
        new_key = secrets.token_urlsafe(18)
        code, members = await self._join(
            keys=[self.members_key(rk), self.meta_key(rk)],
            args=[now, self.join_grace, capacity, peer_id, ROOM_IDLE_TTL, _digest(new_key),
                  proof, _digest(owner_key) if owner_key else "", "1" if recovering else "0"],
        )
        if code == -3:
            raise Recovering()
        if code == -2:
            raise RoomLocked()
        if code == -1:
            raise RoomFull()
        lost, _ = await self.sync_epoch()
        if lost:  # Redis lost its data between the two checks: what we wrote may be a stranger
            await self._undo(keys=[self.members_key(rk), self.meta_key(rk)],  # opening a
                             args=[peer_id, int(code)])  # live room afresh: take it back
            raise Recovering()
        given = {1: new_key, 2: owner_key}.get(int(code))
        return JoinResult(given, int(members))

    def _renew_args(self, peer_id: str, now: float) -> list[float | str | int]:
        return [now, now + self.member_ttl, peer_id, ROOM_IDLE_TTL]

    async def renew(self, rk: str, peer_id: str, *, now: float) -> bool:
        """The peer's socket is in the room: extend its slot by `member_ttl`.

        Marks the owner as present when `peer_id` is the owner (rights take effect).

        Returns:
            False if the peer is no longer a member (it left, or its slot expired).
        """
        n = await self._renew(keys=[self.members_key(rk), self.meta_key(rk)],
                              args=self._renew_args(peer_id, now))
        return bool(n)

    async def renew_many(self, rk: str, peer_ids: list[str], *, now: float) -> list[str]:
        """Renew several members of one room in one round trip; the ones no longer members."""
        if not peer_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for peer_id in peer_ids:
                await self._renew(keys=[self.members_key(rk), self.meta_key(rk)],
                                  args=self._renew_args(peer_id, now), client=pipe)
            results = await pipe.execute()
        return [peer for peer, n in zip(peer_ids, results, strict=True) if not int(n)]

    async def meta_many(self, rks: list[str]) -> dict[str, dict[str, str]]:
        """The meta (owner, lock, password hash, relay) of several rooms, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for rk in rks:
                pipe.hgetall(self.meta_key(rk))
            results = await pipe.execute() if rks else []
        return {rk: {str(k): str(v) for k, v in found.items() if k in META_FIELDS}
                for rk, found in zip(rks, results, strict=True)}

    async def restore(self, rk: str, *, meta: dict[str, str], peers: list[str],
                      now: float) -> None:
        """Put a live room back after Redis lost its data: `meta` (unless another replica
        put it back already) and these members, each for `member_ttl`."""
        flat: list[str] = []
        for name in META_FIELDS:
            if name in meta:
                flat += [name, meta[name]]
        await self._restore(keys=[self.members_key(rk), self.meta_key(rk)], args=[
            now + self.member_ttl, ROOM_IDLE_TTL, len(flat) // 2, *flat, *peers])

    async def members_many(self, rks: list[str], *, now: float) -> dict[str, set[str]]:
        """The live members of several rooms, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for rk in rks:
                pipe.zrangebyscore(self.members_key(rk), f"({now!r}", "+inf")
            results = await pipe.execute() if rks else []
        return {rk: {str(m) for m in found} for rk, found in zip(rks, results, strict=True)}

    async def leave(self, rk: str, peer_id: str) -> bool:
        """Remove a member; True if it was there."""
        return bool(await self.redis.zrem(self.members_key(rk), peer_id))

    async def members(self, rk: str, *, now: float) -> list[str]:
        """Live member peer ids."""
        return [str(m) for m in await self.redis.zrangebyscore(
            self.members_key(rk), f"({now!r}", "+inf")]

    async def _check_owner(self, rk: str, owner_key: str, now: float) -> None:
        stored, owner_peer, here = await self.redis.hmget(
            self.meta_key(rk), ["owner", "owner_peer", "owner_here"])
        if not stored or not hmac.compare_digest(str(stored), _digest(owner_key)):
            raise NotOwner()
        held = await self.redis.zscore(self.members_key(rk), owner_peer) if owner_peer else None
        if here != "1" or held is None or float(held) <= now:
            raise OwnerAbsent()

    async def lock(self, rk: str, *, owner_key: str, password: str, now: float) -> None:
        """Lock the room with `password` (owner only). Raises NotOwner, OwnerAbsent."""
        await self._check_owner(rk, owner_key, now)
        await self.redis.hset(self.meta_key(rk), mapping={
            "locked": "1", "pw": hash_password(password)})

    async def unlock(self, rk: str, *, owner_key: str, now: float) -> None:
        """Unlock the room (owner only). Raises NotOwner, OwnerAbsent."""
        await self._check_owner(rk, owner_key, now)
        await self.redis.hset(self.meta_key(rk), "locked", "0")
        await self.redis.hdel(self.meta_key(rk), "pw")

    async def assigned_relay(self, rk: str) -> str | None:
        relay = await self.redis.hget(self.meta_key(rk), "relay")
        return None if relay is None else str(relay)

    async def assign_relay(self, rk: str, relay_id: str, *, replace: str | None) -> str:
        """Set the room's relay unless another replica set a different one first."""
        script = """
        local cur = redis.call('HGET', KEYS[1], 'relay')
        if cur == false or cur == ARGV[2] then
          redis.call('HSET', KEYS[1], 'relay', ARGV[1])
          redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
          return ARGV[1]
        end
        return cur
        """
        return str(await self.redis.eval(
            script, 1, self.meta_key(rk), relay_id, replace or "", ROOM_IDLE_TTL))

    async def media(self, rk: str) -> tuple[str | None, str | None]:
        """The room's media path (`sfu` once switched, else None) and its pinned SFU."""
        path, sfu = await self.redis.hmget(self.meta_key(rk), ["path", "sfu"])
        return (None if path is None else str(path), None if sfu is None else str(sfu))

    async def pin_sfu(self, rk: str, sfu_id: str, *, replace: str | None) -> str:
        """Move the room to the SFU path on `sfu_id`, unless another replica pinned a
        different live one first (`replace` is the dead one it may take over from)."""
        script = """
        local cur = redis.call('HGET', KEYS[1], 'sfu')
        if cur == false or cur == ARGV[2] then
          redis.call('HSET', KEYS[1], 'sfu', ARGV[1], 'path', 'sfu')
          redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
          return ARGV[1]
        end
        redis.call('HSET', KEYS[1], 'path', 'sfu')
        return cur
        """
        return str(await self.redis.eval(
            script, 1, self.meta_key(rk), sfu_id, replace or "", ROOM_IDLE_TTL))
