"""The diagnostic-log writer: the one store of IP + room + time records that logpurge governs.

Store: a JetStream stream (`PARLEY_DIAG`, subjects `parley.diag.<day>.<ip-key>.<room-key>`),
chosen over a Redis stream because JetStream enforces `max_age` on its own — records die
even while logpurge is down, with no writer needed to trim — it persists to disk with
acknowledged writes, and subject filters let logpurge purge one day or erase one IP's
records (`purge(filter=...)`) without reading anything. Subjects carry keyed hashes only.

The IP and room are encrypted (AES-GCM) under a key per day kept in the JetStream KV bucket
`PARLEY_DIAG_KEYS`; logpurge deletes a day's key once the day passes retention, so any copy
of old records that escaped is unreadable too (crypto-shredding).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import os
import time
from datetime import UTC, datetime
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import (
    BadRequestError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from services.common import subjects
from services.common.hashing import ip_key, room_key
from services.common.messages import DiagnosticRecord

KEYS_BUCKET: Final[str] = subjects.DIAG_KEYS_BUCKET
DEFAULT_PURGE_INTERVAL: Final[float] = 3600.0
DEFAULT_WAIT: Final[float] = 60.0
WAIT_STEP: Final[float] = 0.5


class DiagLogUnavailable(RuntimeError):
    """The diagnostic log's stream or key bucket is missing and this process may not make it."""


def canonical_ip(ip: str) -> str:
    """The canonical text of an address (so `::FFFF:…` and `::ffff:…` hash alike)."""
    try:
        return str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        return ip.strip()


def day_of(ts: float) -> str:
    """The UTC day bucket (YYYYMMDD) a timestamp falls in."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d")


class DiagLog:
    """Writes encrypted diagnostic records to JetStream; reads them back for logpurge."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        hash_key: str,
        retention_days: float = 30,
        purge_interval: float = DEFAULT_PURGE_INTERVAL,
    ) -> None:
        self.js = js
        self.hash_key = hash_key
        self.retention_seconds = retention_days * 86400.0
        self.purge_interval = purge_interval
        self._kv: KeyValue | None = None
        self._day_keys: dict[str, bytes] = {}

    @property
    def max_age(self) -> float:
        """The store's own limit: retention plus one purge interval (defence in depth)."""
        return self.retention_seconds + self.purge_interval

    async def ensure(self, *, create: bool = True, wait: float = DEFAULT_WAIT) -> None:
        """Create (or update) the stream and the key bucket; idempotent across replicas.

        With `create=False` (a writer whose NATS user may not manage streams, see
        `services.common.access`) it only waits, up to `wait` seconds, for logpurge to
        have made them.

        Raises:
            DiagLogUnavailable: `create=False` and they did not appear in time.
        """
        if not create:
            await self._await_existing(wait)
            return
        config = StreamConfig(
            name=subjects.DIAG_STREAM,
            subjects=[subjects.DIAG_ALL],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=self.max_age,
            max_msg_size=4096,
            duplicate_window=min(120.0, self.max_age),
        )
        try:
            await self.js.add_stream(config)
        except BadRequestError:
            await self.js.update_stream(config)
        try:
            self._kv = await self.js.key_value(KEYS_BUCKET)
        except Exception:
            self._kv = await self.js.create_key_value(
                bucket=KEYS_BUCKET, history=1, storage=StorageType.FILE
            )

    async def _await_existing(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                await self.js.stream_info(subjects.DIAG_STREAM)
                self._kv = await self.js.key_value(KEYS_BUCKET)
                return
            except NotFoundError:
                if time.monotonic() >= deadline:
                    raise DiagLogUnavailable(
                        f"the {subjects.DIAG_STREAM} stream or the {KEYS_BUCKET} bucket does "
                        f"not exist after {wait:.0f}s (logpurge creates them)") from None
                await asyncio.sleep(WAIT_STEP)

    async def _day_key(self, day: str) -> bytes:
        if day in self._day_keys:
            return self._day_keys[day]
        assert self._kv is not None, "call ensure() first"
        try:
            entry = await self._kv.get(day)
            key = bytes(entry.value or b"")
        except KeyNotFoundError:
            key = AESGCM.generate_key(bit_length=256)
            try:
                await self._kv.create(day, key)
            except KeyWrongLastSequenceError:  # another replica created it first
                key = bytes((await self._kv.get(day)).value or b"")
        self._day_keys = {day: key}  # only the current day is ever cached
        return key

    async def write(self, *, ip: str, room: str, service: str, event: str = "join",
                    now: float | None = None) -> None:
        """Append one record, acknowledged by JetStream before this returns."""
        at = time.time() if now is None else now
        ip = canonical_ip(ip)
        record = DiagnosticRecord(ip=ip, room=room, at=at, service=service, event=event)
        day = day_of(at)
        nonce = os.urandom(12)
        secret = json.dumps({"ip": record.ip, "room": record.room}).encode()
        ct = AESGCM(await self._day_key(day)).encrypt(nonce, secret, day.encode())
        payload = {
            "v": 1, "day": day, "at": at, "service": service, "event": event,
            "n": base64.b64encode(nonce).decode(), "ct": base64.b64encode(ct).decode(),
        }
        subject = subjects.diag_record(
            day, ip_key(self.hash_key, ip), room_key(self.hash_key, room)
        )
        await self.js.publish(subject, json.dumps(payload).encode(), stream=subjects.DIAG_STREAM)

    @property
    def keys(self) -> KeyValue:
        """The bucket of per-day keys (logpurge destroys expired days here)."""
        assert self._kv is not None, "call ensure() first"
        return self._kv

    async def decrypt(self, payload: bytes) -> DiagnosticRecord | None:
        """Read a stored record back; None once its day's key has been destroyed."""
        doc = json.loads(payload)
        assert self._kv is not None, "call ensure() first"
        try:
            entry = await self._kv.get(doc["day"])
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        clear = AESGCM(bytes(entry.value)).decrypt(
            base64.b64decode(doc["n"]), base64.b64decode(doc["ct"]), doc["day"].encode()
        )
        secret = json.loads(clear)
        return DiagnosticRecord(
            ip=secret["ip"], room=secret["room"], at=doc["at"], service=doc["service"],
            event=doc["event"],
        )
