"""Each service's NATS user and Redis user may do what it needs and is refused the rest.

A real nats-server and redis-server run with the configuration `services.common.access`
renders (`authinfra.start_secured`, as `parley dev` does). Refusals are read from what the
servers answer: NATS reports `Permissions Violation for Publish/Subscription to "<subject>"`
to the client's error callback (before the PONG of a flush; nats.py lower-cases it), Redis
raises NoPermissionError.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nats
import pytest
import redis as redis_sync
import redis.asyncio as aioredis
from nats.aio.client import Client
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from services.common import subjects
from services.common.access import NATS_USERS, REDIS_USERS, Credentials, inbox_prefix_for
from services.common.authinfra import SecuredServers, start_secured
from services.common.diaglog import KEYS_BUCKET, DiagLog, DiagLogUnavailable, day_of
from services.common.infra import free_port
from services.common.roomstate import RoomState
from services.logpurge.store import DiagStore
from services.metrics.bus import AGGREGATOR_DURABLE, ensure_stream, publish_beacon
from tests.integration.dev.test_dev_stack import _children

RELAY_ID = "relay-a"
HASH_KEY = "least-privilege-test-key"
DENY_TIMEOUT = 1.0  # a refused JetStream request is dropped by the server: no reply comes


@pytest.fixture(scope="module")
def secured() -> Iterator[SecuredServers]:
    servers = start_secured(relay_id=RELAY_ID)
    try:
        yield servers
    finally:
        servers.stop()


@dataclass
class Conn:
    """One NATS connection as one service's user, with the violations the server reported."""

    nc: Client
    errors: list[str] = field(default_factory=list)

    async def violations(self, expected: int = 0) -> list[str]:
        """The refusals so far, once `expected` of them came (the server sends each one
        as it refuses, and nats.py hands them over from its read loop)."""
        await self.nc.flush()
        for _ in range(200):  # up to ~10 s
            if len(self.errors) >= expected:
                break
            await asyncio.sleep(0.05)
        await self.nc.flush()
        return [e.removeprefix("nats: ") for e in self.errors]

    async def denied_request(self, coro: Any) -> None:
        with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
            await coro
            raise AssertionError("the request was answered")


@pytest.fixture
async def connect(secured: SecuredServers) -> AsyncIterator[Any]:
    conns: list[Conn] = []

    async def make(user: str) -> Conn:
        conn = Conn(nc=None)  # type: ignore[arg-type]

        async def on_error(exc: Exception) -> None:
            conn.errors.append(str(exc))

        url = secured.nats_url(user)
        conn.nc = await nats.connect(url, error_cb=on_error, inbox_prefix=inbox_prefix_for(url),
                                     allow_reconnect=False)
        conns.append(conn)
        return conn

    yield make
    for c in conns:
        await c.nc.close()


def pub_violation(subject: str) -> str:
    """The server's refusal as nats.py reports it (lower-cased)."""
    return f'permissions violation for publish to "{subject.lower()}"'


def sub_violation(subject: str) -> str:
    return f'permissions violation for subscription to "{subject.lower()}"'


async def _owned_diag_log(connect: Any) -> tuple[Conn, DiagLog]:
    """logpurge's connection and the diagnostic log it made (stream, bucket, audit)."""
    lp = await connect("logpurge")
    diag = DiagLog(lp.nc.jetstream(), hash_key=HASH_KEY)
    store = DiagStore(_Bus(lp.nc), diag, hash_key=HASH_KEY, retention_days=30)
    await store.ensure()
    return lp, diag


class _Bus:
    """What DiagStore needs of a NatsBus: `js` (and `nc` for nothing else)."""

    def __init__(self, nc: Client) -> None:
        self.nc, self.js = nc, nc.jetstream()


# --- NATS: refused ---

async def test_signaling_user_cannot_read_the_day_keys(connect: Any) -> None:
    await _owned_diag_log(connect)
    sig = await connect("signaling")
    await sig.nc.subscribe(subjects.kv_subject(KEYS_BUCKET))
    js = sig.nc.jetstream(timeout=DENY_TIMEOUT)
    await sig.denied_request(js.key_value(KEYS_BUCKET))
    await sig.denied_request(js.get_msg(f"KV_{KEYS_BUCKET}", subject="$KV.PARLEY_DIAG_KEYS.x"))
    assert await sig.violations(3) == [
        sub_violation("$KV.PARLEY_DIAG_KEYS.>"),
        pub_violation("$JS.API.STREAM.INFO.KV_PARLEY_DIAG_KEYS"),
        pub_violation("$JS.API.STREAM.MSG.GET.KV_PARLEY_DIAG_KEYS"),
    ]


async def test_rooms_user_writes_day_keys_but_cannot_read_them(connect: Any) -> None:
    await _owned_diag_log(connect)
    rooms = await connect("rooms")
    writer = DiagLog(rooms.nc.jetstream(), hash_key=HASH_KEY)
    await writer.ensure(create=False, wait=5)
    await writer.write(ip="203.0.113.9", room="sealed", service="rooms")
    day = day_of(time.time())
    js = rooms.nc.jetstream(timeout=DENY_TIMEOUT)
    await rooms.denied_request(js.get_msg(f"KV_{KEYS_BUCKET}",
                                          subject=subjects.kv_subject(KEYS_BUCKET, day)))
    await rooms.denied_request(js.get_msg(f"KV_{KEYS_BUCKET}", direct=True,
                                          subject=subjects.kv_subject(KEYS_BUCKET, day)))
    await rooms.nc.subscribe(subjects.kv_subject(KEYS_BUCKET))
    assert await rooms.violations(3) == [
        pub_violation("$JS.API.STREAM.MSG.GET.KV_PARLEY_DIAG_KEYS"),
        pub_violation(f"$JS.API.DIRECT.GET.KV_PARLEY_DIAG_KEYS.$KV.PARLEY_DIAG_KEYS.{day}"),
        sub_violation("$KV.PARLEY_DIAG_KEYS.>"),
    ]


async def test_signaling_user_cannot_fake_heartbeats_or_erasures(connect: Any) -> None:
    sig = await connect("signaling")
    await sig.nc.publish(subjects.relay_heartbeat(RELAY_ID), b"{}")
    await sig.nc.publish(subjects.logpurge_erase(), b'{"ip_key": "x"}')
    await sig.nc.subscribe(subjects.RELAY_HEARTBEATS)
    await sig.nc.subscribe(subjects.DIAG_ALL)
    assert await sig.violations(4) == [
        pub_violation("parley.relay.heartbeat.relay-a"),
        pub_violation("parley.logpurge.erase"),
        sub_violation("parley.relay.heartbeat.*"),
        sub_violation("parley.diag.>"),
    ]


async def test_relay_user_cannot_read_rooms_or_speak_for_another_relay(connect: Any) -> None:
    relay = await connect("relay")
    await relay.nc.subscribe(subjects.ROOMS_ALL)
    await relay.nc.publish(subjects.relay_heartbeat("relay-b"), b"{}")
    await relay.nc.publish(subjects.room_events("r1"), b"{}")
    await relay.nc.subscribe(subjects.relay_control("relay-b"))
    await relay.nc.subscribe("_INBOX.rooms.>")
    assert await relay.violations(5) == [
        sub_violation("parley.room.>"),
        pub_violation("parley.relay.heartbeat.relay-b"),
        pub_violation("parley.room.r1.events"),
        sub_violation("parley.relay.control.relay-b"),
        sub_violation("_INBOX.rooms.>"),
    ]


async def test_rooms_user_cannot_read_purge_or_reconfigure_the_diag_log(connect: Any) -> None:
    await _owned_diag_log(connect)
    rooms = await connect("rooms")
    js = rooms.nc.jetstream(timeout=DENY_TIMEOUT)
    await rooms.denied_request(js.purge_stream(subjects.DIAG_STREAM))
    await rooms.denied_request(js.get_msg(subjects.DIAG_STREAM, seq=1))
    await rooms.denied_request(js.delete_stream(subjects.DIAG_STREAM))
    await rooms.denied_request(js.add_consumer(subjects.DIAG_STREAM))
    await rooms.nc.subscribe(subjects.DIAG_ALL)
    await rooms.nc.subscribe(subjects.ROOMS_ALL)
    await rooms.nc.publish(subjects.kv_subject(KEYS_BUCKET, subjects.DIAG_KEYS_STATE), b"{}")
    await rooms.nc.publish(subjects.logpurge_erase(), b'{"ip_key": "x"}')
    await rooms.nc.publish(subjects.peer_inbox("r1", "p1"), b"{}")
    await rooms.nc.publish(subjects.room_members("r1"), b"{}")  # allowed: slot changes
    assert await rooms.violations(9) == [
        pub_violation("$JS.API.STREAM.PURGE.PARLEY_DIAG"),
        pub_violation("$JS.API.STREAM.MSG.GET.PARLEY_DIAG"),
        pub_violation("$JS.API.STREAM.DELETE.PARLEY_DIAG"),
        pub_violation("$JS.API.CONSUMER.CREATE.PARLEY_DIAG"),
        sub_violation("parley.diag.>"),
        sub_violation("parley.room.>"),
        pub_violation("$KV.PARLEY_DIAG_KEYS.logpurge-last-purge"),
        pub_violation("parley.logpurge.erase"),
        pub_violation("parley.room.r1.peer.p1"),
    ]


async def test_metrics_and_operator_users_reach_nothing_of_rooms_or_the_diag_log(
    connect: Any,
) -> None:
    for user in ("metrics", "operator"):
        c = await connect(user)
        await c.nc.subscribe(subjects.ROOMS_ALL)
        await c.nc.subscribe(subjects.kv_subject(KEYS_BUCKET))
        await c.nc.publish(subjects.diag_record("20260101", "a", "b"), b"{}")
        await c.nc.publish(subjects.logpurge_erase(), b"{}")
        assert await c.violations(4) == [
            sub_violation("parley.room.>"),
            sub_violation("$KV.PARLEY_DIAG_KEYS.>"),
            pub_violation("parley.diag.20260101.a.b"),
            pub_violation("parley.logpurge.erase"),
        ], user


async def test_logpurge_user_cannot_reach_rooms_or_relays(connect: Any) -> None:
    lp = await connect("logpurge")
    await lp.nc.subscribe(subjects.ROOMS_ALL)
    await lp.nc.publish(subjects.relay_control(RELAY_ID), b"{}")
    await lp.nc.publish(subjects.diag_record("20260101", "a", "b"), b"{}")
    assert await lp.violations(3) == [
        sub_violation("parley.room.>"),
        pub_violation("parley.relay.control.relay-a"),
        pub_violation("parley.diag.20260101.a.b"),
    ]


# --- NATS: allowed ---

async def test_rooms_appends_and_logpurge_reads_purges_and_erases(connect: Any) -> None:
    lp, lp_diag = await _owned_diag_log(connect)
    rooms = await connect("rooms")
    writer = DiagLog(rooms.nc.jetstream(), hash_key=HASH_KEY)
    await writer.ensure(create=False, wait=5)
    now = time.time()
    await writer.write(ip="203.0.113.7", room="least-privilege", service="rooms", now=now)
    await writer.write(ip="203.0.113.8", room="least-privilege", service="rooms", now=now)
    store = DiagStore(_Bus(lp.nc), lp_diag, hash_key=HASH_KEY, retention_days=30)
    found = await store.lookup(room="least-privilege")
    assert sorted(r.ip for r in found) == ["203.0.113.7", "203.0.113.8"]
    assert await store.erase(ip="203.0.113.7") == 1
    left = (await store.status()).records  # this one, and any an earlier test wrote today
    result = await store.purge(now=now + 40 * 86400)
    assert (result.removed, result.keys_destroyed) == (left, 1)
    assert (await store.status()).records == 0
    assert await rooms.violations() == []
    assert await lp.violations() == []


async def test_rooms_diag_log_without_logpurge_says_what_is_missing() -> None:
    """Rooms may not create the diagnostic log: without logpurge it waits, then says why."""
    servers = start_secured()
    try:
        nc = await nats.connect(servers.nats_url("rooms"),
                                inbox_prefix=inbox_prefix_for(servers.nats_url("rooms")))
        with pytest.raises(DiagLogUnavailable) as err:
            await DiagLog(nc.jetstream(), hash_key=HASH_KEY).ensure(create=False, wait=1)
        assert str(err.value) == ("the PARLEY_DIAG stream or the PARLEY_DIAG_KEYS or "
                                  "PARLEY_DIAG_PUBKEYS bucket does not exist after 1s "
                                  "(logpurge creates them)")
        await nc.close()
    finally:
        servers.stop()


async def test_relay_and_operator_exchange_heartbeats_and_control(connect: Any) -> None:
    relay, operator, rooms = [await connect(u) for u in ("relay", "operator", "rooms")]
    op_hb = await operator.nc.subscribe(subjects.RELAY_HEARTBEATS)
    rooms_hb = await rooms.nc.subscribe(subjects.RELAY_HEARTBEATS)
    control = await relay.nc.subscribe(subjects.relay_control(RELAY_ID))
    for c in (operator, rooms, relay):
        await c.nc.flush()
    await relay.nc.publish(subjects.relay_heartbeat(RELAY_ID), b"{}")
    await operator.nc.publish(subjects.relay_control(RELAY_ID), b"{}")
    assert (await op_hb.next_msg(timeout=10)).subject == "parley.relay.heartbeat.relay-a"
    assert (await rooms_hb.next_msg(timeout=10)).subject == "parley.relay.heartbeat.relay-a"
    assert (await control.next_msg(timeout=10)).subject == "parley.relay.control.relay-a"
    for c in (operator, rooms, relay):
        assert await c.violations() == []


async def test_signaling_user_routes_room_messages(connect: Any) -> None:
    a, b, rooms = await connect("signaling"), await connect("signaling"), await connect("rooms")
    sub = await b.nc.subscribe(subjects.room_all("r1"))
    await b.nc.flush()
    await a.nc.publish(subjects.peer_inbox("r1", "p1"), b"offer")
    assert (await sub.next_msg(timeout=10)).data == b"offer"
    await rooms.nc.publish(subjects.room_members("r1"), b"joined")
    assert (await sub.next_msg(timeout=10)).data == b"joined"
    for c in (a, b, rooms):
        assert await c.violations() == []


async def test_metrics_user_runs_its_stream_and_consumer(connect: Any) -> None:
    m = await connect("metrics")
    js = m.nc.jetstream()
    await ensure_stream(js, max_age=3600, dedup_window=60)
    assert await publish_beacon(js, b'{"v": 1}', msg_id="n-1") is True
    psub = await js.pull_subscribe_bind(AGGREGATOR_DURABLE, stream=subjects.BEACON_STREAM)
    msgs = await psub.fetch(1, timeout=10)
    assert [x.data for x in msgs] == [b'{"v": 1}']
    await msgs[0].ack()
    assert await m.violations() == []


async def test_logpurge_user_takes_erasure_requests(connect: Any) -> None:
    lp = await connect("logpurge")
    await lp.nc.subscribe(subjects.logpurge_erase(), queue="logpurge")
    assert await lp.violations() == []


# --- Redis ---

@pytest.fixture
async def redis_as(secured: SecuredServers) -> AsyncIterator[Any]:
    clients: list[aioredis.Redis] = []

    def make(user: str) -> aioredis.Redis:
        client = aioredis.from_url(secured.redis_url(user), decode_responses=True)
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.aclose()


async def test_redis_default_user_is_off(secured: SecuredServers) -> None:
    anon = aioredis.from_url(secured.redis.url)
    try:
        with pytest.raises(AuthenticationError):
            await anon.ping()
    finally:
        await anon.aclose()


async def test_redis_metrics_user_cannot_touch_room_keys(redis_as: Any) -> None:
    metrics = redis_as("metrics")
    with pytest.raises(NoPermissionError):
        await metrics.hget(RoomState.meta_key("r1"), "owner")
    with pytest.raises(NoPermissionError):
        await metrics.zadd(RoomState.members_key("r1"), {"p": 1})
    await metrics.hincrby("parley:metrics:day:2026-01-01", "cell", 1)
    assert await metrics.hgetall("parley:metrics:day:2026-01-01") == {"cell": "1"}


async def test_redis_rooms_and_signaling_share_room_keys_only(redis_as: Any) -> None:
    rooms, signaling = redis_as("rooms"), redis_as("signaling")
    state = RoomState(rooms)
    joined = await state.join("r1", "p1", capacity=2, now=time.time())
    assert joined.members == 1
    assert await RoomState(signaling).renew("r1", "p1", now=time.time()) is True
    await signaling.set("parley:sig:{r1}:live", "x")
    with pytest.raises(NoPermissionError):
        await rooms.get("parley:sig:{r1}:live")
    with pytest.raises(NoPermissionError):
        await signaling.get("parley:metrics:day:2026-01-01")


async def test_redis_no_user_runs_dangerous_commands(redis_as: Any) -> None:
    for user in ("rooms", "signaling", "metrics", "health"):
        client = redis_as(user)
        for command in (("FLUSHALL",), ("KEYS", "*"), ("CONFIG", "GET", "*"),
                        ("SCRIPT", "FLUSH"), ("ACL", "LIST")):
            with pytest.raises(NoPermissionError):
                await client.execute_command(*command)
        assert await client.ping() is True


async def test_redis_health_user_only_pings(redis_as: Any) -> None:
    health = redis_as("health")
    with pytest.raises(NoPermissionError):
        await health.get("parley:room:{r1}:meta")
    with pytest.raises((NoPermissionError, ResponseError)):
        await health.eval("return 1", 0)


async def test_nats_passwords_that_read_like_numbers_or_dates_still_work() -> None:
    odd = ["2026-01-01", "0o17", "1e5", "true", "-12_3", "00123abc", "0x1F"]
    creds = Credentials(nats={u: odd[i] for i, u in enumerate(NATS_USERS)},
                        redis={u: odd[i] for i, u in enumerate(REDIS_USERS)})
    servers = start_secured(credentials=creds)
    try:
        for user in NATS_USERS:
            nc = await nats.connect(servers.nats_url(user), allow_reconnect=False)
            await nc.close()
        for user in REDIS_USERS:
            client = aioredis.from_url(servers.redis_url(user))
            assert await client.ping() is True
            await client.aclose()
    finally:
        servers.stop()


# --- parley dev runs with these users ---

def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(x.decode(errors="replace").split("=", 1) for x in raw if b"=" in x)


def _start_dev(port: int) -> tuple[subprocess.Popen[str], str]:
    """`parley dev` on `port`; its process and what it printed until it was running."""
    proc = subprocess.Popen([sys.executable, "-m", "services", "dev", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if "Parley is running at" in line:
            return proc, "".join(lines)
    raise AssertionError(f"parley dev exited: {proc.wait()}\n{''.join(lines)[-3000:]}")


def test_parley_dev_gives_every_service_its_own_users_and_hides_passwords() -> None:
    port = free_port()
    proc, out = _start_dev(port)
    try:
        m = re.search(r"their users of this run: (\S+)", out)
        assert m
        creds_path = Path(m.group(1))
        assert creds_path.stat().st_mode & 0o777 == 0o600
        doc = json.loads(creds_path.read_text())
        passwords = [str(urlsplit(u).password) for kind in ("nats", "redis")
                     for u in doc[kind].values()]
        assert len(passwords) == len(set(passwords)) == 7 + 4 + 2  # services, admin
        for p in passwords:
            assert p not in out, "a password in parley dev's output"
        users = {}
        for pid in _children(proc.pid):
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                for p in passwords:
                    assert p not in cmd, f"a password in the argv of {cmd[:60]}"
                service = re.search(r"-m services (\w+)", cmd)
                if service:
                    env = _environ(pid)
                    nats_url = env.get("PARLEY_RELAY_NATS_URL", env.get(
                        "PARLEY_SFU_NATS_URL", env.get("PARLEY_NATS_URL")))
                    redis_url = env.get("PARLEY_REDIS_URL")
                    users[service.group(1)] = (nats_url and urlsplit(nats_url).username,
                                               redis_url and urlsplit(redis_url).username)
        assert users == {"rooms": ("rooms", "rooms"), "signaling": ("signaling", "signaling"),
                         "logpurge": ("logpurge", None), "metrics": ("metrics", "metrics"),
                         "relay": ("relay", None), "sfu": ("sfu", None),
                         "gateway": (None, None)}
        bare = re.search(r"nats (nats://[\d.:]+)  redis (redis://[\d.:]+)", out)
        assert bare
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            asyncio.run(nats.connect(bare.group(1), allow_reconnect=False,
                                     max_reconnect_attempts=0, connect_timeout=5))
        with pytest.raises(AuthenticationError):
            redis_sync.Redis.from_url(bare.group(2)).ping()
        # a join (diagnostic record, today's key, relay choice) works under these users,
        # and nats-server refused nothing any service tried
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/rooms/least-privilege/join", data=b"{}",
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
            assert json.load(r)["ice_servers"][-1]["username"]
        nats_log = (creds_path.parent / "nats.log").read_text()
        assert "Publish Violation" not in nats_log
        assert "Subscription Violation" not in nats_log
        assert "authentication error" in nats_log  # ours, above: this is the right log
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
