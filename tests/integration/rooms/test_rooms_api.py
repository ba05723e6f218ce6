"""The rooms service over real sockets, on real NATS and Redis."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

import httpx
import nats.errors
import pytest
import redis.asyncio as aioredis

from services.common import subjects
from services.common.bus import NatsBus
from services.common.diaglog import DiagLog
from services.common.messages import RelayHeartbeat
from services.common.hashing import room_key
from services.common.roomstate import RoomState
from services.common.tokens import verify_join_token
from tests.procs import ServiceProcess, start_service


def unique_room() -> str:
    return f"it-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def client(rooms_proc: ServiceProcess) -> httpx.AsyncClient:
    # as the web client does: /api POSTs are JSON (rooms refuses others with 415)
    async with httpx.AsyncClient(base_url=rooms_proc.url, timeout=10,
                                 headers={"content-type": "application/json"}) as c:
        yield c  # type: ignore[misc]


async def test_create_room_readable_name(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/rooms")
    assert r.status_code == 201
    body = r.json()
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{6}", body["name"])
    assert body["url"].endswith("/" + body["name"])


async def test_join_room_shape_and_token(
    client: httpx.AsyncClient, parley_env: dict[str, str]
) -> None:
    name = unique_room()
    r = await client.post(f"/api/rooms/{name.upper()}/join")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"peer_id", "token", "signaling_url", "ice_servers", "room", "warnings"}
    assert body["room"] == {"name": name, "capacity": 6, "locked": False}
    assert body["owner_key"]
    assert body["signaling_url"] == "/ws"  # a path: the browser resolves it (issue 15)
    claims = verify_join_token(parley_env["PARLEY_TOKEN_KEY"], body["token"])
    assert claims.room == name and claims.peer_id == body["peer_id"] and claims.owner
    second = (await client.post(f"/api/rooms/{name}/join", json={})).json()
    assert second["owner_key"] is None and second["peer_id"] != body["peer_id"]


@pytest.mark.parametrize("bad", ["a%20b", "x" * 65, "-dash", "api"])
async def test_join_room_invalid_name_422(client: httpx.AsyncClient, bad: str) -> None:
    r = await client.post(f"/api/rooms/{bad}/join")
    assert r.status_code == 422
    assert isinstance(r.json()["detail"], str)


async def test_join_room_unknown_field_422(client: httpx.AsyncClient) -> None:
    r = await client.post(f"/api/rooms/{unique_room()}/join", json={"ip": "1.2.3.4"})
    assert r.status_code == 422


async def test_join_room_body_too_large_413(client: httpx.AsyncClient) -> None:
    r = await client.post(
        f"/api/rooms/{unique_room()}/join",
        content=b'{"password":"' + b"x" * 20000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413


async def test_join_room_capacity_race(client: httpx.AsyncClient) -> None:
    name = unique_room()
    results = await asyncio.gather(*[client.post(f"/api/rooms/{name}/join") for _ in range(50)])
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 6
    assert codes.count(409) == 44
    assert all(r.json() == {"detail": "room is full"} for r in results if r.status_code == 409)


async def test_leave_frees_a_place(client: httpx.AsyncClient) -> None:
    name = unique_room()
    joins = [(await client.post(f"/api/rooms/{name}/join")).json() for _ in range(6)]
    assert (await client.post(f"/api/rooms/{name}/join")).status_code == 409
    r = await client.post(f"/api/rooms/{name}/leave", json={"token": joins[0]["token"]})
    assert r.status_code == 204
    assert (await client.post(f"/api/rooms/{name}/join")).status_code == 200


async def test_leave_token_for_another_room_403(client: httpx.AsyncClient) -> None:
    a = (await client.post(f"/api/rooms/{unique_room()}/join")).json()
    r = await client.post(f"/api/rooms/{unique_room()}/leave", json={"token": a["token"]})
    assert r.status_code == 403
    r = await client.post(f"/api/rooms/{unique_room()}/leave", json={"token": "nope"})
    assert r.status_code == 401


async def socket_joined(redis: aioredis.Redis, env: dict[str, str], name: str,
                        peer_id: str) -> None:
    """What signalling does when a peer's socket joins: renew its slot."""
    assert await RoomState(redis).renew(room_key(env["PARLEY_HASH_KEY"], name), peer_id,
                                        now=time.time())


async def test_lock_room_semantics(client: httpx.AsyncClient, redis: aioredis.Redis,
                                   parley_env: dict[str, str]) -> None:
    name = unique_room()
    owner = (await client.post(f"/api/rooms/{name}/join")).json()
    guest = (await client.post(f"/api/rooms/{name}/join")).json()
    # a non-owner cannot lock
    r = await client.post(
        f"/api/rooms/{name}/lock", json={"owner_key": "not-the-key", "password": "pw"}
    )
    assert r.status_code == 403
    # the owner's rights take effect once its socket is in the room
    r = await client.post(
        f"/api/rooms/{name}/lock", json={"owner_key": owner["owner_key"], "password": "pw"}
    )
    assert r.status_code == 409
    assert r.json() == {"detail": "the owner's rights take effect once the owner is in the call"}
    await socket_joined(redis, parley_env, name, owner["peer_id"])
    r = await client.post(
        f"/api/rooms/{name}/lock", json={"owner_key": owner["owner_key"], "password": "open sesame"}
    )
    assert r.status_code == 204
    for body in (None, {"password": "wrong"}, {"password": ""}):
        r = await client.post(f"/api/rooms/{name}/join", json=body)
        assert r.status_code == 403
        assert r.json() == {"detail": "locked"}
    r = await client.post(f"/api/rooms/{name}/join", json={"password": "open sesame"})
    assert r.status_code == 200 and r.json()["room"]["locked"] is True
    r = await client.post(
        f"/api/rooms/{name}/unlock", json={"owner_key": guest["owner_key"] or "x"}
    )
    assert r.status_code == 403
    r = await client.post(f"/api/rooms/{name}/unlock", json={"owner_key": owner["owner_key"]})
    assert r.status_code == 204
    assert (await client.post(f"/api/rooms/{name}/join")).status_code == 200


async def test_health_ready_metrics_config(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["nats"] and ready.json()["redis"]
    config = (await client.get("/config.json")).json()
    assert config["capacity"] == 6 and config["force_relay"] is False
    assert config["signaling_url"] == "/ws"
    await client.post(f"/api/rooms/{unique_room()}/join")
    metrics = (await client.get("/metrics")).text
    assert 'parley_rooms_joins_total{result="ok"}' in metrics
    assert 'route="/api/rooms/{name}/join"' in metrics


async def test_web_client_routes(client: httpx.AsyncClient) -> None:
    for path in ("/", f"/{unique_room()}"):
        r = await client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["referrer-policy"] == "no-referrer"
    assert (await client.get("/not a room")).status_code == 404
    assert (await client.get("/favicon.ico")).status_code == 404


async def test_web_errors_are_pages_for_browsers_json_for_the_api(
        client: httpx.AsyncClient) -> None:
    page = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("/hello%20world!", "/api", f"/{'a' * 70}"):
        r = await client.get(path, headers=page)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert "Go to the start page" in r.text and '"detail"' not in r.text
    r = await client.get("/hello%20world!")
    assert r.status_code == 404 and r.json() == {"detail": "not found"}
    r = await client.post(f"/api/rooms/{'a' * 70}/join", json={}, headers=page)
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"


def heartbeat(rid: str, allocations: int, *, draining: bool = False) -> bytes:
    return (
        RelayHeartbeat(
            relay_id=rid,
            public_host=f"relay-{rid}.example",
            allocations=allocations,
            draining=draining,
            sent_at=time.time(),
        )
        .model_dump_json()
        .encode()
    )


def turn_host(body: dict[str, object]) -> str | None:
    for server in body["ice_servers"]:  # type: ignore[attr-defined]
        for url in server["urls"]:
            if url.startswith("turn:"):
                return str(url.split(":")[1])
    return None


async def test_relay_selection_from_heartbeats(client: httpx.AsyncClient, bus: NatsBus) -> None:
    tag = uuid.uuid4().hex[:6]
    a, b, c = f"a{tag}", f"b{tag}", f"c{tag}"

    async def beat(loads: dict[str, int], draining: frozenset[str] = frozenset()) -> None:
        for rid, n in loads.items():
            await bus.publish(
                subjects.relay_heartbeat(rid), heartbeat(rid, n, draining=rid in draining)
            )
        await bus.flush()
        await asyncio.sleep(0.3)

    await beat({a: 5, b: 1, c: 0}, draining=frozenset({c}))
    room = unique_room()
    first = (await client.post(f"/api/rooms/{room}/join")).json()
    assert turn_host(first) == f"relay-{b}.example"
    assert first["warnings"] == []
    turn = next(s for s in first["ice_servers"] if "username" in s)
    assert re.fullmatch(r"\d+:[\w-]+", turn["username"]) and turn["credential"]
    # load changes, but every peer of a room keeps the room's relay
    await beat({a: 0, b: 40, c: 0}, draining=frozenset({c}))
    second = (await client.post(f"/api/rooms/{room}/join")).json()
    assert turn_host(second) == f"relay-{b}.example"
    # a new room gets the now least-loaded relay
    other = (await client.post(f"/api/rooms/{unique_room()}/join")).json()
    assert turn_host(other) == f"relay-{a}.example"
    # the room's relay starts draining: a newcomer is moved to a live one
    await beat({a: 0, b: 40, c: 0}, draining=frozenset({b, c}))
    third = (await client.post(f"/api/rooms/{room}/join")).json()
    assert turn_host(third) == f"relay-{a}.example"


async def test_no_live_relay_warns(parley_env: dict[str, str]) -> None:
    # a rooms process with a fresh NATS subject space: no heartbeat ever reaches it
    sp = start_service("rooms", [], {**parley_env, "PARLEY_RELAY_TTL": "1"})
    try:
        await asyncio.sleep(1.2)  # let any heartbeat from other tests go stale
        async with httpx.AsyncClient(base_url=sp.url) as c:
            body = (await c.post(f"/api/rooms/{unique_room()}/join", json={})).json()
        assert turn_host(body) is None
        assert any("no TURN relay" in w for w in body["warnings"])
    finally:
        sp.stop()


async def test_join_rate_limited(parley_env: dict[str, str]) -> None:
    sp = start_service(
        "rooms", [], {**parley_env, "PARLEY_JOIN_BURST": "3", "PARLEY_JOIN_RATE": "0.01"}
    )
    try:
        async with httpx.AsyncClient(base_url=sp.url) as c:
            codes = [
                (await c.post(f"/api/rooms/{unique_room()}/join", json={})).status_code
                for _ in range(5)
            ]
        assert codes == [200, 200, 200, 429, 429]
    finally:
        sp.stop()


async def test_join_writes_one_encrypted_diagnostic_record(
    client: httpx.AsyncClient,
    bus: NatsBus,
    parley_env: dict[str, str],
    rooms_proc: ServiceProcess,
) -> None:
    room = unique_room()
    # X-Forwarded-For from an untrusted peer is ignored: the socket address is recorded
    r = await client.post(f"/api/rooms/{room}/join", headers={"x-forwarded-for": "203.0.113.9"})
    assert r.status_code == 200
    diag = DiagLog(bus.js, hash_key=parley_env["PARLEY_HASH_KEY"])
    await diag.ensure()
    from services.common.hashing import room_key

    sub = await bus.js.subscribe(
        subjects.diag_filter(room_key=room_key(parley_env["PARLEY_HASH_KEY"], room)),
        ordered_consumer=True,
    )
    msg = await sub.next_msg(timeout=5)
    assert room not in msg.subject and "127.0.0.1" not in msg.subject
    assert room.encode() not in msg.data and b"127.0.0.1" not in msg.data
    record = await diag.decrypt(msg.data)
    assert record is not None
    assert (record.ip, record.room, record.service) == ("127.0.0.1", room, "rooms")
    with pytest.raises(nats.errors.TimeoutError):
        await sub.next_msg(timeout=0.5)
    await sub.unsubscribe()
    # and nothing of it reached the service's own stdout
    out = rooms_proc.output()
    assert room not in out and "127.0.0.1" not in out and "203.0.113.9" not in out
    assert json.dumps(room) not in out


async def test_ice_refresh_moves_room_off_a_late_relay(client: httpx.AsyncClient,
                                                       bus: NatsBus) -> None:
    tag = uuid.uuid4().hex[:6]
    a, b = f"a{tag}", f"b{tag}"

    async def beat(loads: dict[str, int]) -> None:
        for rid, n in loads.items():
            await bus.publish(subjects.relay_heartbeat(rid), heartbeat(rid, n))
        await bus.flush()
        await asyncio.sleep(0.3)

    for _ in range(3):
        await beat({a: 0, b: 50})
    room = unique_room()
    joined = (await client.post(f"/api/rooms/{room}/join")).json()
    assert turn_host(joined) == f"relay-{a}.example"
    token = joined["token"]
    # a answers its beats: a member's failure is its own network; fresh credentials, same relay
    fresh = await client.post(f"/api/rooms/{room}/ice", json={"token": token})
    assert fresh.status_code == 200, fresh.text
    assert turn_host(fresh.json()) == f"relay-{a}.example"
    old = next(s for s in joined["ice_servers"] if "username" in s)
    new = next(s for s in fresh.json()["ice_servers"] if "username" in s)
    assert new["username"] != old["username"]
    # a falls silent (killed): once it has missed its beats, a failing member moves the room
    for _ in range(5):
        await beat({b: 50})
    moved = (await client.post(f"/api/rooms/{room}/ice", json={"token": token})).json()
    assert turn_host(moved) == f"relay-{b}.example"
    # and everyone in the room follows, joins included
    assert turn_host((await client.post(f"/api/rooms/{room}/join")).json()) == f"relay-{b}.example"


async def test_ice_refresh_refuses_strangers(client: httpx.AsyncClient) -> None:
    room = unique_room()
    joined = (await client.post(f"/api/rooms/{room}/join")).json()
    bad = await client.post(f"/api/rooms/{room}/ice", json={"token": "x" * 40})
    assert bad.status_code == 401
    other = await client.post(f"/api/rooms/{unique_room()}/ice", json={"token": joined["token"]})
    assert other.status_code == 403
    huge = await client.post(f"/api/rooms/{room}/ice", json={"token": "x" * 5000})
    assert huge.status_code == 422
    left = await client.post(f"/api/rooms/{room}/leave", json={"token": joined["token"]})
    assert left.status_code == 204
    gone = await client.post(f"/api/rooms/{room}/ice", json={"token": joined["token"]})
    assert gone.status_code == 410
