"""The diagnostic-log writer: the one store of IP + room + time records that logpurge governs.

Store: a JetStream stream (`PARLEY_DIAG`, subjects `parley.diag.<day>.<ip-key>.<room-key>`),
chosen over a Redis stream because JetStream enforces `max_age` on its own — records die
even while logpurge is down, with no writer needed to trim — it persists to disk with
acknowledged writes, and subject filters let logpurge purge one day or erase one IP's
records (`purge(filter=...)`) without reading anything. Subjects carry keyed hashes only.

The IP and room are sealed to a key pair per day: the writer encrypts each record with an
ephemeral X25519 key against the day's public key (`PARLEY_DIAG_PUBKEYS`), HKDF-SHA256 and
AES-GCM, as a sealed box does, so the writer (rooms) never needs, and its NATS user may
never read, the day's private key (`PARLEY_DIAG_KEYS`, logpurge's). The first writer of a
day makes the pair: the public key first (create-only, so replicas agree), then the
private key, written without reading it back. Logpurge deletes both once the day passes
retention, so any copy of old records that escaped is unreadable too (crypto-shredding).
Records of format v1 (AES-GCM under a symmetric day key in the same bucket) still decrypt.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import logging
import os
import time
from datetime import UTC, datetime
from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
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

log = logging.getLogger(__name__)
KEYS_BUCKET: Final[str] = subjects.DIAG_KEYS_BUCKET
PUBKEYS_BUCKET: Final[str] = subjects.DIAG_PUBKEYS_BUCKET
_SEAL_INFO: Final[bytes] = b"parley diagnostic record v2"
_X25519_LEN: Final[int] = 32
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


def _seal_key(shared: bytes, ephemeral: bytes, day: str) -> bytes:
    """The AES key of one sealed record (HKDF over the X25519 secret, bound to the day)."""
    return HKDF(algorithm=SHA256(), length=32, salt=ephemeral,
                info=_SEAL_INFO + day.encode()).derive(shared)


def seal(public: bytes, clear: bytes, day: str) -> tuple[bytes, bytes]:
    """Encrypt `clear` to the day's public key: (nonce, ephemeral public key + ciphertext)."""
    eph = X25519PrivateKey.generate()
    epub = eph.public_key().public_bytes_raw()
    key = _seal_key(eph.exchange(X25519PublicKey.from_public_bytes(public)), epub, day)
    nonce = os.urandom(12)
    return nonce, epub + AESGCM(key).encrypt(nonce, clear, day.encode())


def unseal(private: bytes, nonce: bytes, sealed: bytes, day: str) -> bytes:
    """The inverse of `seal`, with the day's private key."""
    epub, ct = sealed[:_X25519_LEN], sealed[_X25519_LEN:]
    shared = X25519PrivateKey.from_private_bytes(private).exchange(
        X25519PublicKey.from_public_bytes(epub))
    return AESGCM(_seal_key(shared, epub, day)).decrypt(nonce, ct, day.encode())


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
        self._pub: KeyValue | None = None
        self._day_public: dict[str, bytes] = {}

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
        self._kv = await self._bucket(KEYS_BUCKET)
        self._pub = await self._bucket(PUBKEYS_BUCKET)

    async def _bucket(self, name: str) -> KeyValue:
        try:
            return await self.js.key_value(name)
        except NotFoundError:
            return await self.js.create_key_value(bucket=name, history=1,
                                                  storage=StorageType.FILE)

    async def _await_existing(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                await self.js.stream_info(subjects.DIAG_STREAM)
                self._kv = await self.js.key_value(KEYS_BUCKET)
                self._pub = await self.js.key_value(PUBKEYS_BUCKET)
                return
            except NotFoundError:
                if time.monotonic() >= deadline:
                    raise DiagLogUnavailable(
                        f"the {subjects.DIAG_STREAM} stream or the {KEYS_BUCKET} or "
                        f"{PUBKEYS_BUCKET} bucket does not exist after {wait:.0f}s "
                        "(logpurge creates them)") from None
                await asyncio.sleep(WAIT_STEP)

    async def _public_key(self, day: str) -> bytes:
        """The day's public key, making the day's pair if this is the day's first record.

        The private key is written with an expected revision of 0 and never read back: the
        writer's NATS user may not read `PARLEY_DIAG_KEYS`.
        """
        if day in self._day_public:
            return self._day_public[day]
        assert self._pub is not None and self._kv is not None, "call ensure() first"
        try:
            public = bytes((await self._pub.get(day)).value or b"")
        except KeyNotFoundError:
            private = X25519PrivateKey.generate()
            public = private.public_key().public_bytes_raw()
            try:
                await self._pub.create(day, public)
            except KeyWrongLastSequenceError:  # another replica made the day's pair first
                public = bytes((await self._pub.get(day)).value or b"")
            else:
                try:
                    await self._kv.update(day, private.private_bytes_raw(), last=0)
                except KeyWrongLastSequenceError:
                    log.warning("a day key existed before its public key; that day's "
                                "new records will not be readable")
        self._day_public = {day: public}  # only the current day is ever cached
        return public

    async def write(self, *, ip: str, room: str, service: str, event: str = "join",
                    now: float | None = None, msg_id: str | None = None,
                    ack_wait: float | None = None) -> None:
        """Append one record, acknowledged by JetStream before this returns.

        `msg_id` (random, never derived from the record) becomes `Nats-Msg-Id`, so that a
        retry of a write whose acknowledgement was lost is stored once.
        """
        at = time.time() if now is None else now
        ip = canonical_ip(ip)
        record = DiagnosticRecord(ip=ip, room=room, at=at, service=service, event=event)
        day = day_of(at)
        secret = json.dumps({"ip": record.ip, "room": record.room}).encode()
        nonce, ct = seal(await self._public_key(day), secret, day)
        payload = {
            "v": 2, "day": day, "at": at, "service": service, "event": event,
            "n": base64.b64encode(nonce).decode(), "ct": base64.b64encode(ct).decode(),
        }
        subject = subjects.diag_record(
            day, ip_key(self.hash_key, ip), room_key(self.hash_key, room)
        )
        await self.js.publish(subject, json.dumps(payload).encode(), stream=subjects.DIAG_STREAM,
                              timeout=ack_wait,
                              headers={"Nats-Msg-Id": msg_id} if msg_id else None)

    @property
    def keys(self) -> KeyValue:
        """The bucket of per-day private keys (logpurge destroys expired days here)."""
        assert self._kv is not None, "call ensure() first"
        return self._kv

    @property
    def public_keys(self) -> KeyValue:
        """The bucket of per-day public keys (what writers read)."""
        assert self._pub is not None, "call ensure() first"
        return self._pub

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
        nonce, ct, day = base64.b64decode(doc["n"]), base64.b64decode(doc["ct"]), doc["day"]
        if doc.get("v") == 1:  # a symmetric day key (records written before v2)
            clear = AESGCM(bytes(entry.value)).decrypt(nonce, ct, day.encode())
        else:
            clear = unseal(bytes(entry.value), nonce, ct, day)
        secret = json.loads(clear)
        return DiagnosticRecord(
            ip=secret["ip"], room=secret["room"], at=doc["at"], service=doc["service"],
            event=doc["event"],
        )
