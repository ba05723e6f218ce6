"""Logpurge's operations on the diagnostic store: purge by age, erase, lookup, status.

Records are read in stream order with `next_by_subj` gets; a purge removes everything below
the first record still inside retention with one ranged purge, then deletes the few older
records that clock skew left above it. Erasure purges by subject filter (keyed hash of the
IP or room), so nothing is decrypted to find it. Every purge and erasure publishes an audit
event with counts only (also kept in the `PARLEY_AUDIT` stream).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from services.common import subjects
from services.common.bus import NatsBus
from services.common.diaglog import DiagLog, canonical_ip, day_of
from services.common.hashing import ip_key, room_key
from services.common.messages import AuditEvent, DiagnosticRecord
from services.logpurge.policy import cutoff, expired_days

log = logging.getLogger(__name__)
AUDIT_STREAM = subjects.AUDIT_STREAM
STATE_KEY = subjects.DIAG_KEYS_STATE
MAX_LOOKUP = 10_000
MAX_WALK = timedelta(days=4000)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    removed: int
    keys_destroyed: int


@dataclass(frozen=True, slots=True)
class Status:
    records: int
    oldest_at: float | None
    last_purge_at: float | None


class DiagStore:
    """Purge, erase, look up and describe the diagnostic log."""

    def __init__(self, bus: NatsBus, diag: DiagLog, *, hash_key: str, retention_days: int,
                 clock_skew: float = 300.0) -> None:
        self.bus, self.diag, self.hash_key = bus, diag, hash_key
        self.retention_days, self.clock_skew = retention_days, clock_skew
        self.js = bus.js

    async def ensure(self) -> None:
        await self.diag.ensure()
        config = StreamConfig(name=AUDIT_STREAM, subjects=[subjects.AUDIT_ALL],
                              storage=StorageType.FILE, max_age=400 * 86400.0)
        try:
            await self.js.add_stream(config)
        except BadRequestError:
            await self.js.update_stream(config)

    async def _records(
        self, filter_subject: str = subjects.DIAG_ALL
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Yield (seq, payload) in stream order for `filter_subject`."""
        seq = 1
        while True:
            try:
                msg = await self.js.get_msg(subjects.DIAG_STREAM, seq=seq, subject=filter_subject,
                                            next=True)
            except NotFoundError:
                return
            if msg.seq is None:
                return
            yield int(msg.seq), bytes(msg.data or b"")
            seq = int(msg.seq) + 1

    async def _count(self) -> int:
        info = await self.js.stream_info(subjects.DIAG_STREAM)
        return int(info.state.messages)

    async def purge(self, *, now: float | None = None) -> PurgeResult:
        """Remove every record older than retention and destroy expired days' keys.

        Whole days before the cutoff's day go by subject filter (one request a day, no
        reading); the cutoff's own day is read and cut exactly, so a record written out of
        time order (a replica's skewed clock, an injected clock) is removed all the same.
        Idempotent and safe to run from several replicas at once.
        """
        now = time.time() if now is None else now
        limit = cutoff(now, self.retention_days)
        cut_day = day_of(limit)
        before = await self._count()
        for day in await self._days_before(cut_day):
            await self.js.purge_stream(subjects.DIAG_STREAM,
                                       subject=subjects.diag_filter(day=day))
        day_filter = subjects.diag_filter(day=cut_day)
        first_kept: int | None = None
        stragglers: list[int] = []
        async for seq, payload in self._records(day_filter):
            if float(json.loads(payload).get("at", 0)) >= limit:
                first_kept = first_kept or seq
            elif first_kept is not None:
                stragglers.append(seq)
        if first_kept is None:
            await self.js.purge_stream(subjects.DIAG_STREAM, subject=day_filter)
        else:
            await self.js.purge_stream(subjects.DIAG_STREAM, subject=day_filter, seq=first_kept)
        for seq in stragglers:
            with contextlib.suppress(NotFoundError, BadRequestError):
                await self.js.delete_msg(subjects.DIAG_STREAM, seq)  # a replica may be first
        removed = max(0, before - await self._count())
        destroyed = await self._destroy_expired_keys(now)
        await self.diag.keys.put(STATE_KEY, json.dumps({"at": now}).encode())
        await self._audit("purge", removed, now, {"keys_destroyed": destroyed})
        return PurgeResult(removed, destroyed)

    async def _days_before(self, cut_day: str) -> list[str]:
        """Every day before `cut_day` that may hold records: from the oldest record's day."""
        oldest: str | None = None
        async for _, payload in self._records():
            oldest = day_of(float(json.loads(payload).get("at", 0)))
            break
        days: set[str] = set()
        with contextlib.suppress(Exception):  # NoKeysError on an empty bucket
            days |= {k for k in await self.diag.keys.keys() if k.isdigit() and k < cut_day}
        if oldest is not None and oldest < cut_day:
            d = datetime.strptime(oldest, "%Y%m%d").replace(tzinfo=UTC)
            floor = datetime.strptime(cut_day, "%Y%m%d").replace(tzinfo=UTC) - MAX_WALK
            d = max(d, floor)  # older than that, JetStream's max_age has removed it already
            while (day := d.strftime("%Y%m%d")) < cut_day:
                days.add(day)
                d += timedelta(days=1)
        return sorted(days)

    async def _destroy_expired_keys(self, now: float) -> int:
        """Destroy every expired day's private key (and its public key); how many days."""
        days: set[str] = set()
        for bucket in (self.diag.keys, self.diag.public_keys):
            with contextlib.suppress(Exception):  # nats raises NoKeysError on an empty bucket
                days |= {k for k in await bucket.keys() if k.isdigit()}
        dead = expired_days(sorted(days), now=now, retention_days=self.retention_days)
        for day in dead:
            await self.diag.keys.purge(day)
            await self.diag.public_keys.purge(day)
        return len(dead)

    async def erase(self, *, ip: str | None = None, room: str | None = None,
                    now: float | None = None) -> int:
        """Remove every record of one IP or one room at once; return how many."""
        if (ip is None) == (room is None):
            raise ValueError("give exactly one of ip or room")
        if ip is not None:
            return await self.erase_keyed(ip_key=ip_key(self.hash_key, canonical_ip(ip)), now=now)
        return await self.erase_keyed(room_key=room_key(self.hash_key, str(room)), now=now)

    async def erase_keyed(self, *, ip_key: str | None = None, room_key: str | None = None,
                          now: float | None = None) -> int:
        """Erase by keyed hash (what travels over NATS); return how many were removed."""
        if ip_key is not None:
            flt = subjects.diag_filter(ip_key=ip_key)
        elif room_key is not None:
            flt = subjects.diag_filter(room_key=room_key)
        else:
            raise ValueError("give exactly one of ip_key or room_key")
        info = await self.js.stream_info(subjects.DIAG_STREAM, subjects_filter=flt)
        count = sum((info.state.subjects or {}).values())
        if count:
            await self.js.purge_stream(subjects.DIAG_STREAM, subject=flt)
        await self._audit("erase", count, time.time() if now is None else now, {})
        return count

    async def lookup(self, *, room: str) -> list[DiagnosticRecord]:
        """The readable records kept for one room (what diagnostics means)."""
        flt = subjects.diag_filter(room_key=room_key(self.hash_key, room))
        out: list[DiagnosticRecord] = []
        async for _, payload in self._records(flt):
            record = await self.diag.decrypt(payload)
            if record is not None:
                out.append(record)
            if len(out) >= MAX_LOOKUP:
                break
        return out

    async def status(self) -> Status:
        """Record count, the oldest record's time, the last purge's time."""
        count = await self._count()
        oldest: float | None = None
        async for _, payload in self._records():
            oldest = float(json.loads(payload).get("at", 0))
            break
        last: float | None = None
        try:
            entry = await self.diag.keys.get(STATE_KEY)
            last = float(json.loads(entry.value or b"{}").get("at"))
        except Exception:
            last = None
        return Status(count, oldest, last)

    async def _audit(self, kind: str, removed: int, at: float, detail: dict[str, int]) -> None:
        event = AuditEvent(kind=kind, removed=removed, at=at, detail=detail)  # type: ignore[arg-type]
        try:
            await self.js.publish(subjects.audit(kind), event.model_dump_json().encode())
        except Exception:
            log.warning("audit event could not be stored")
