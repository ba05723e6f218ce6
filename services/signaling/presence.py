"""Presence: who is in a room, their media state, which socket holds them, until when.

Per room, under the opaque room key (`services.common.redisclient.key`): `sig:{rk}:live`,
a sorted set peer id → deadline (see `resume.Deadlines`), and `sig:{rk}:peers`, a hash
peer id → `PresenceRecord` JSON (connection id, replica, media state, resume-key hash).
Both keys carry a TTL renewed by heartbeats. Every change is one Lua script, so two
replicas racing (a resume against a reap, a drop against a resume) settle atomically.
`MemoryPresence` is the executable specification the unit tests run against; the
integration tests run the same cases against `RedisPresence`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict

from services.common.redisclient import key
from services.signaling.protocol import MediaState
from services.signaling.resume import Deadlines, ResumeOutcome, decide_resume, hash_resume_key


class PresenceRecord(BaseModel):
    """One peer's presence (stored as JSON in Redis)."""

    model_config = ConfigDict(extra="ignore")

    conn: str
    replica: str
    media: MediaState = MediaState()
    resume: str  # SHA-256 of the resume key


@dataclass(frozen=True, slots=True)
class Beat:
    """What a heartbeat found, by room key (rooms with nothing to report are absent)."""

    reaped: dict[str, list[str]] = field(default_factory=dict)
    lost: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResumeResult:
    outcome: ResumeOutcome
    old_conn: str | None = None
    media: MediaState | None = None


class Presence(Protocol):
    """Presence operations; every one is atomic."""

    deadlines: Deadlines

    async def attach(self, rk: str, peer: str, record: PresenceRecord, *, now: float) -> bool:
        """Add a fresh peer; False if a live presence for it exists already."""
        ...

    async def resume(self, rk: str, peer: str, *, presented_key: str, conn: str, replica: str,
                     new_hash: str, now: float) -> ResumeResult:
        """Move a live peer to a new connection, rotating its resume key."""
        ...

    async def detach(self, rk: str, peer: str, *, conn: str, now: float) -> bool:
        """The socket `conn` dropped: start the grace, if `conn` still holds the peer."""
        ...

    async def remove(self, rk: str, peer: str, *, conn: str) -> bool:
        """The peer left through `conn`: remove it, if `conn` still holds it."""
        ...

    async def set_media(self, rk: str, peer: str, *, conn: str, media: MediaState) -> bool:
        """Record a media-state change."""
        ...

    async def heartbeat(self, rooms: Mapping[str, Iterable[str]], *, now: float) -> Beat:
        """Push the deadlines of live local peers forward, then reap each room.

        Args:
            rooms: room key → the peers whose sockets this replica holds.

        Returns:
            The peers reaped (past their deadline) and the local peers presence no longer
            has (reaped by another replica while this one could not reach Redis).
        """
        ...

    async def reap(self, rk: str, *, now: float) -> list[str]:
        """Remove and return peers past their deadline (each returned to one caller only)."""
        ...

    async def snapshot(self, rk: str, *, now: float) -> dict[str, PresenceRecord]:
        """The live peers of the room."""
        ...


@dataclass
class _Room:
    deadlines: dict[str, float] = field(default_factory=dict)
    records: dict[str, PresenceRecord] = field(default_factory=dict)


class MemoryPresence:
    """In-process presence with the same semantics as `RedisPresence` (for unit tests)."""

    def __init__(self, deadlines: Deadlines) -> None:
        self.deadlines = deadlines
        self.rooms: dict[str, _Room] = {}

    def _room(self, rk: str) -> _Room:
        return self.rooms.setdefault(rk, _Room())

    async def attach(self, rk: str, peer: str, record: PresenceRecord, *, now: float) -> bool:
        room = self._room(rk)
        if room.deadlines.get(peer, -1.0) >= now:
            return False
        room.records[peer] = record
        room.deadlines[peer] = self.deadlines.live(now)
        return True

    async def resume(self, rk: str, peer: str, *, presented_key: str, conn: str, replica: str,
                     new_hash: str, now: float) -> ResumeResult:
        room = self._room(rk)
        rec = room.records.get(peer)
        outcome = decide_resume(stored_hash=rec.resume if rec else None,
                                deadline=room.deadlines.get(peer), presented_key=presented_key,
                                now=now)
        if outcome is not ResumeOutcome.RESUMED or rec is None:
            return ResumeResult(outcome)
        room.records[peer] = rec.model_copy(update={"conn": conn, "replica": replica,
                                                    "resume": new_hash})
        room.deadlines[peer] = self.deadlines.live(now)
        return ResumeResult(outcome, rec.conn, rec.media)

    async def detach(self, rk: str, peer: str, *, conn: str, now: float) -> bool:
        room = self._room(rk)
        rec = room.records.get(peer)
        if rec is None or rec.conn != conn or peer not in room.deadlines:
            return False
        room.deadlines[peer] = self.deadlines.dropped(now)
        return True

    async def remove(self, rk: str, peer: str, *, conn: str) -> bool:
        room = self._room(rk)
        rec = room.records.get(peer)
        if rec is None or rec.conn != conn:
            return False
        del room.records[peer]
        room.deadlines.pop(peer, None)
        return True

    async def set_media(self, rk: str, peer: str, *, conn: str, media: MediaState) -> bool:
        room = self._room(rk)
        rec = room.records.get(peer)
        if rec is None or rec.conn != conn:
            return False
        room.records[peer] = rec.model_copy(update={"media": media})
        return True

    async def heartbeat(self, rooms: Mapping[str, Iterable[str]], *, now: float) -> Beat:
        beat = Beat()
        for rk, peers in rooms.items():
            room = self._room(rk)
            lost = []
            for peer in peers:
                if peer in room.deadlines:
                    room.deadlines[peer] = self.deadlines.live(now)
                else:
                    lost.append(peer)
            if lost:
                beat.lost[rk] = lost
            dead = await self.reap(rk, now=now)
            if dead:
                beat.reaped[rk] = dead
        return beat

    async def reap(self, rk: str, *, now: float) -> list[str]:
        room = self._room(rk)
        dead = sorted(p for p, d in room.deadlines.items() if d < now)
        for peer in dead:
            del room.deadlines[peer]
            room.records.pop(peer, None)
        return dead

    async def snapshot(self, rk: str, *, now: float) -> dict[str, PresenceRecord]:
        room = self._room(rk)
        return {p: room.records[p] for p, d in sorted(room.deadlines.items())
                if d >= now and p in room.records}


# --- Redis ---------------------------------------------------------------------------------

_ATTACH: Final[str] = """
local d = redis.call('ZSCORE', KEYS[1], ARGV[1])
if d and tonumber(d) >= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5]); redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
"""

_RESUME: Final[str] = """
local raw = redis.call('HGET', KEYS[2], ARGV[1])
local d = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not raw or not d or tonumber(d) < tonumber(ARGV[7]) then return {'gone'} end
local rec = cjson.decode(raw)
if rec['resume'] ~= ARGV[2] then return {'bad-key'} end
local old = rec['conn']
rec['conn'] = ARGV[3]; rec['replica'] = ARGV[4]; rec['resume'] = ARGV[5]
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(rec))
redis.call('ZADD', KEYS[1], ARGV[6], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[8]); redis.call('EXPIRE', KEYS[2], ARGV[8])
return {'resumed', old, cjson.encode(rec['media'])}
"""

_DETACH: Final[str] = """
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw or cjson.decode(raw)['conn'] ~= ARGV[2] then return 0 end
return redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[3], ARGV[1])
"""

_REMOVE: Final[str] = """
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw or cjson.decode(raw)['conn'] ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1]); redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""

_MEDIA: Final[str] = """
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if rec['conn'] ~= ARGV[2] then return 0 end
rec['media'] = cjson.decode(ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(rec))
return 1
"""

_REAP: Final[str] = """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
for _, p in ipairs(dead) do
  redis.call('ZREM', KEYS[1], p); redis.call('HDEL', KEYS[2], p)
end
return dead
"""

_SNAPSHOT: Final[str] = """
local live = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
local out = {}
for _, p in ipairs(live) do
  local raw = redis.call('HGET', KEYS[2], p)
  if raw then table.insert(out, p); table.insert(out, raw) end
end
return out
"""


def _media_json(media: MediaState) -> str:
    return json.dumps(media.model_dump())


class RedisPresence:
    """Presence in Redis (see the module docstring for the keys)."""

    def __init__(self, redis: aioredis.Redis, deadlines: Deadlines) -> None:
        self.redis = redis
        self.deadlines = deadlines
        self._ttl = deadlines.key_ttl()
        self._attach = redis.register_script(_ATTACH)
        self._resume = redis.register_script(_RESUME)
        self._detach = redis.register_script(_DETACH)
        self._remove = redis.register_script(_REMOVE)
        self._media = redis.register_script(_MEDIA)
        self._reap = redis.register_script(_REAP)
        self._snapshot = redis.register_script(_SNAPSHOT)

    @staticmethod
    def keys(rk: str) -> list[str]:
        """The room's presence keys: [live, peers]."""
        return [key("sig", rk, "live"), key("sig", rk, "peers")]

    async def attach(self, rk: str, peer: str, record: PresenceRecord, *, now: float) -> bool:
        n = await self._attach(keys=self.keys(rk), args=[
            peer, record.model_dump_json(), repr(self.deadlines.live(now)), repr(now), self._ttl])
        return bool(n)

    async def resume(self, rk: str, peer: str, *, presented_key: str, conn: str, replica: str,
                     new_hash: str, now: float) -> ResumeResult:
        out = await self._resume(keys=self.keys(rk), args=[
            peer, hash_resume_key(presented_key), conn, replica, new_hash,
            repr(self.deadlines.live(now)), repr(now), self._ttl])
        outcome = ResumeOutcome(out[0])
        if outcome is not ResumeOutcome.RESUMED:
            return ResumeResult(outcome)
        return ResumeResult(outcome, str(out[1]), MediaState.model_validate_json(out[2]))

    async def detach(self, rk: str, peer: str, *, conn: str, now: float) -> bool:
        n = await self._detach(keys=self.keys(rk),
                               args=[peer, conn, repr(self.deadlines.dropped(now))])
        return bool(n)

    async def remove(self, rk: str, peer: str, *, conn: str) -> bool:
        return bool(await self._remove(keys=self.keys(rk), args=[peer, conn]))

    async def set_media(self, rk: str, peer: str, *, conn: str, media: MediaState) -> bool:
        return bool(await self._media(keys=self.keys(rk), args=[peer, conn, _media_json(media)]))

    async def heartbeat(self, rooms: Mapping[str, Iterable[str]], *, now: float) -> Beat:
        # One round trip for all the rooms given: per room ZMSCORE (who is still there),
        # ZADD XX (push their deadlines; never resurrect), two EXPIREs, the reap script.
        deadline = self.deadlines.live(now)
        order: list[tuple[str, list[str]]] = []
        async with self.redis.pipeline(transaction=False) as pipe:
            for rk, peers in rooms.items():
                local = list(peers)
                live, peers_key = self.keys(rk)
                if local:
                    pipe.zmscore(live, local)
                    pipe.zadd(live, dict.fromkeys(local, deadline), xx=True)
                pipe.expire(live, self._ttl)
                pipe.expire(peers_key, self._ttl)
                await self._reap(keys=[live, peers_key], args=[repr(now)], client=pipe)
                order.append((rk, local))
            results = list(await pipe.execute()) if order else []
        beat = Beat()
        i = 0
        for rk, local in order:
            if local:
                scores, i = results[i], i + 2
                lost = [p for p, score in zip(local, scores, strict=True) if score is None]
                if lost:
                    beat.lost[rk] = lost
            dead, i = results[i + 2], i + 3
            if dead:
                beat.reaped[rk] = [str(p) for p in dead]
        return beat

    async def reap(self, rk: str, *, now: float) -> list[str]:
        return [str(p) for p in await self._reap(keys=self.keys(rk), args=[repr(now)])]

    async def snapshot(self, rk: str, *, now: float) -> dict[str, PresenceRecord]:
        flat = await self._snapshot(keys=self.keys(rk), args=[repr(now)])
        return {str(flat[i]): PresenceRecord.model_validate_json(flat[i + 1])
                for i in range(0, len(flat), 2)}
