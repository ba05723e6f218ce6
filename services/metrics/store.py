"""Day aggregates in Redis, folded exactly once per raw-stream message by one Lua script.

Why Redis and a script rather than a JetStream KV: folding must be "count this message
unless it was already counted" as one atomic step, with several aggregator replicas and
JetStream redeliveries (an ack lost in a NATS restart redelivers a message that was
already counted). A KV bucket gives compare-and-set on one key, but the counter and the
"already counted" mark would be two keys, so a crash between them double-counts or loses a
beacon. In Redis one script does both: for each message it sets bit `seq` in a bitmap keyed
by the stream's epoch and `seq >> 20` (`SETBIT` returns the old bit) and increments the
cell's counter only if the bit was 0. Bitmaps cost one bit per raw message and expire
`raw max age + 1 h` after their last write, by which time the stream has dropped every
message they cover, so no redelivery can find its mark gone. Sequence numbers are not
derived from anything a user sent; the session nonce never reaches Redis.

Keys (single Redis; the script touches keys it computes, so it is not Cluster-safe):
`parley:metrics:day:<YYYY-MM-DD>` hash cell → sessions (expires after the retention);
`parley:metrics:seen:<epoch>:<chunk>` bitmap; `parley:metrics:release:<report>:<period>`
a frozen noisy release (only with differential privacy on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis
import redis.exceptions

from services.metrics.errors import AggregateStoreError

PREFIX: Final[str] = "parley:metrics"
CHUNK_BITS: Final[int] = 20

# ARGV: agg_ttl, seen_ttl, then (day, epoch, seq, cell) per message. Returns messages folded.
FOLD_LUA: Final[str] = """
local agg_ttl = tonumber(ARGV[1])
local seen_ttl = tonumber(ARGV[2])
local folded = 0
local touched = {}
for i = 3, #ARGV, 4 do
  local day, epoch, seq, cell = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local chunk = math.floor(seq / 1048576)
  local seen = 'parley:metrics:seen:' .. epoch .. ':' .. chunk
  if redis.call('SETBIT', seen, seq % 1048576, 1) == 0 then
    local agg = 'parley:metrics:day:' .. day
    redis.call('HINCRBY', agg, cell, 1)
    folded = folded + 1
    touched[agg] = agg_ttl
  end
  touched[seen] = seen_ttl
end
for key, ttl in pairs(touched) do
  redis.call('EXPIRE', key, ttl)
end
return folded
"""


@dataclass(frozen=True, slots=True)
class Fold:
    """One raw-stream message to fold: its day, the stream epoch and sequence, its cell."""

    day: str
    epoch: int
    seq: int
    cell: str


def day_key(day: str) -> str:
    """Redis key of one day's aggregate hash."""
    return f"{PREFIX}:day:{day}"


class AggregateStore:
    """Folds messages into day hashes exactly once and reads days back."""

    def __init__(self, client: aioredis.Redis, *, retention_days: int, raw_max_age: float) -> None:
        self.client = client
        self.agg_ttl = int(retention_days * 86400 + 86400)
        self.seen_ttl = int(raw_max_age + 3600)
        self._fold: Any = client.register_script(FOLD_LUA)

    async def fold(self, items: Sequence[Fold]) -> int:
        """Count each message unless already counted; return how many were new.

        Raises:
            AggregateStoreError: Redis failed; nothing of the batch may be acknowledged.
        """
        if not items:
            return 0
        argv: list[str | int] = [self.agg_ttl, self.seen_ttl]
        for it in items:
            argv += [it.day, it.epoch, it.seq, it.cell]
        try:
            return int(await self._fold(keys=[], args=argv))
        except (redis.exceptions.RedisError, OSError) as exc:
            raise AggregateStoreError(f"fold failed: {type(exc).__name__}") from exc

    async def days(self, days: Sequence[str]) -> list[dict[str, int]]:
        """Each day's `cell -> sessions` mapping (empty for a day with nothing)."""
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for d in days:
                    pipe.hgetall(day_key(d))
                raw = await pipe.execute()
        except (redis.exceptions.RedisError, OSError) as exc:
            raise AggregateStoreError(f"read failed: {type(exc).__name__}") from exc
        return [{_s(k): int(v) for k, v in h.items()} for h in raw]

    async def frozen_release(self, report: str, period: str, body: str) -> str:
        """Store `body` as the release of `report` for `period` unless one exists; return
        the stored one (so noise is drawn once per period, not averaged away by re-asking)."""
        key = f"{PREFIX}:release:{report}:{period}"
        try:
            await self.client.set(key, body, nx=True, ex=self.agg_ttl)
            stored = await self.client.get(key)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise AggregateStoreError(f"release failed: {type(exc).__name__}") from exc
        return _s(stored) if stored is not None else body

    async def ping(self) -> bool:
        """Whether Redis answers."""
        try:
            return bool(await self.client.ping())
        except (redis.exceptions.RedisError, OSError):
            return False


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
