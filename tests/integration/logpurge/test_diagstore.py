"""The diagnostic log against a real JetStream: retention, shredding, erasure, lookup."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from services.common import subjects
from services.common.bus import NatsBus
from services.common.diaglog import DiagLog
from services.common.infra import NatsServer
from services.logpurge.store import DiagStore

HASH_KEY = "test-hash-key"
DAY = 86400.0


@pytest.fixture
async def own_nats() -> AsyncIterator[NatsBus]:
    """A NATS of this test's own: the diagnostic stream's limits are set per test."""
    srv = NatsServer().start()
    bus = await NatsBus.connect(srv.url, name="test")
    yield bus
    await bus.close()
    srv.stop()


async def _store(bus: NatsBus, retention_days: float = 30, interval: float = 3600) -> DiagStore:
    diag = DiagLog(
        bus.js, hash_key=HASH_KEY, retention_days=retention_days, purge_interval=interval
    )
    store = DiagStore(bus, diag, hash_key=HASH_KEY, retention_days=int(retention_days) or 1)
    await store.ensure()
    return store


async def _all_payloads(bus: NatsBus) -> list[tuple[str, bytes]]:
    info = await bus.js.stream_info(subjects.DIAG_STREAM)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            m = await bus.js.get_msg(subjects.DIAG_STREAM, seq)
        except Exception:
            continue
        out.append((m.subject or "", bytes(m.data or b"")))
    return out


async def test_purge_retention_boundary(own_nats: NatsBus) -> None:
    store = await _store(own_nats)
    now = time.time()
    ret = 30 * DAY
    await store.diag.write(ip="203.0.113.1", room="too-old", service="t", now=now - ret - 1)
    await store.diag.write(ip="203.0.113.2", room="just-kept", service="t", now=now - ret + 1)
    await store.diag.write(ip="203.0.113.3", room="fresh", service="t", now=now)
    result = await store.purge(now=now)
    assert result.removed == 1
    assert [r.room for r in await store.lookup(room="too-old")] == []
    assert [r.room for r in await store.lookup(room="just-kept")] == ["just-kept"]
    assert [r.room for r in await store.lookup(room="fresh")] == ["fresh"]
    # idempotent: a second cycle (another replica) removes nothing more
    assert (await store.purge(now=now)).removed == 0


async def test_purge_out_of_order_records(own_nats: NatsBus) -> None:
    store = await _store(own_nats)
    now = time.time()
    await store.diag.write(ip="203.0.113.1", room="kept-a", service="t", now=now - 10)
    # a replica with a skewed clock appended an old record after a newer one
    await store.diag.write(ip="203.0.113.1", room="old-b", service="t", now=now - 31 * DAY)
    await store.diag.write(ip="203.0.113.1", room="kept-c", service="t", now=now)
    assert (await store.purge(now=now)).removed == 1
    assert await store.lookup(room="old-b") == []
    assert len(await store.lookup(room="kept-a")) == 1


async def test_purge_destroys_day_keys_old_copies_unreadable(own_nats: NatsBus) -> None:
    store = await _store(own_nats)
    now = time.time()
    await store.diag.write(ip="198.51.100.7", room="shredded", service="t", now=now - 40 * DAY)
    escaped = [p for _, p in await _all_payloads(own_nats)]
    assert await store.diag.decrypt(escaped[0]) is not None
    result = await store.purge(now=now)
    assert result.keys_destroyed == 1
    # a copy that escaped before the purge (a backup, a snapshot) can no longer be read
    assert await store.diag.decrypt(escaped[0]) is None


async def test_store_never_holds_ip_or_room_in_clear(own_nats: NatsBus) -> None:
    store = await _store(own_nats)
    room = f"clear-{uuid.uuid4().hex[:8]}"
    await store.diag.write(ip="2001:db8::42", room=room, service="t")
    await store.diag.write(ip="192.0.2.200", room=room, service="t")
    for subject, payload in await _all_payloads(own_nats):
        for needle in (room, "2001:db8::42", "192.0.2.200"):
            assert needle not in subject
            assert needle.encode() not in payload
        assert set(json.loads(payload)) == {"v", "day", "at", "service", "event", "n", "ct"}


async def test_erase_by_ip_removes_exactly_that_ip(own_nats: NatsBus) -> None:
    store = await _store(own_nats)
    for i in range(3):
        await store.diag.write(ip="203.0.113.50", room=f"r{i}", service="t")
    await store.diag.write(ip="203.0.113.51", room="r0", service="t")
    assert await store.erase(ip="203.0.113.50") == 3
    left = await store.lookup(room="r0")
    assert [r.ip for r in left] == ["203.0.113.51"]
    assert await store.erase(ip="203.0.113.50") == 0


async def test_erase_by_room_and_canonical_ip(own_nats: NatsBus) -> None:
    store = await _store(own_nats)
    await store.diag.write(ip="2001:DB8::1", room="gone", service="t")
    await store.diag.write(ip="2001:db8::1", room="stays", service="t")
    assert await store.erase(room="gone") == 1
    assert await store.erase(ip="2001:db8:0::1") == 1  # same address, other spelling


async def test_status_counts_and_oldest(own_nats: NatsBus) -> None:
    store = await _store(own_nats)
    now = time.time()
    await store.diag.write(ip="192.0.2.1", room="s", service="t", now=now - 100)
    await store.diag.write(ip="192.0.2.1", room="s", service="t", now=now)
    st = await store.status()
    assert st.records == 2 and st.oldest_at == pytest.approx(now - 100)
    await store.purge(now=now)
    assert (await store.status()).last_purge_at == pytest.approx(now)


async def test_audit_events_carry_counts_only(own_nats: NatsBus) -> None:
    store = await _store(own_nats)
    seen: list[bytes] = []

    async def on(env: object) -> None:
        seen.append(env.data)  # type: ignore[attr-defined]

    await own_nats.subscribe(subjects.AUDIT_ALL, on)
    await store.diag.write(ip="192.0.2.9", room="audited", service="t")
    await store.erase(room="audited")
    await store.purge()
    await own_nats.flush()
    await asyncio.sleep(0.2)
    assert len(seen) == 2
    for raw in seen:
        doc = json.loads(raw)
        assert set(doc) == {"kind", "removed", "at", "detail"}
        assert b"192.0.2.9" not in raw and b"audited" not in raw


async def test_store_max_age_removes_records_without_logpurge(own_nats: NatsBus) -> None:
    # retention 2 s + interval 1 s: JetStream itself drops records after 3 s
    diag = DiagLog(own_nats.js, hash_key=HASH_KEY, retention_days=2 / DAY, purge_interval=1)
    await diag.ensure()
    await diag.write(ip="192.0.2.77", room="ephemeral", service="t")
    info = await own_nats.js.stream_info(subjects.DIAG_STREAM)
    assert info.state.messages == 1 and info.config.max_age == pytest.approx(3)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (await own_nats.js.stream_info(subjects.DIAG_STREAM)).state.messages == 0:
            break
        await asyncio.sleep(0.25)
    assert (await own_nats.js.stream_info(subjects.DIAG_STREAM)).state.messages == 0


async def test_records_of_format_v1_still_decrypt(own_nats: NatsBus) -> None:
    """Records written before sealing (v1: AES-GCM under a symmetric day key) stay readable."""
    import base64
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    store = await _store(own_nats)
    key, nonce, day = AESGCM.generate_key(bit_length=256), os.urandom(12), "20260101"
    await store.diag.keys.create(day, key)
    ct = AESGCM(key).encrypt(nonce, b'{"ip": "192.0.2.9", "room": "old"}', day.encode())
    payload = json.dumps({"v": 1, "day": day, "at": 1767225600.0, "service": "rooms",
                          "event": "join", "n": base64.b64encode(nonce).decode(),
                          "ct": base64.b64encode(ct).decode()}).encode()
    record = await store.diag.decrypt(payload)
    assert record is not None and (record.ip, record.room) == ("192.0.2.9", "old")
