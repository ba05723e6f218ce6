"""URLs in rooms' answers: from PARLEY_PUBLIC_URL, never from the Host header (issue 15,
item 6), and the relay's address from the interface a request came in on (issue 16)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from services.common import subjects
from services.common.bus import NatsBus
from services.common.messages import RelayHeartbeat
from tests.procs import ServiceProcess, start_service

FORGED = {"Host": "evil.example"}
PUBLIC = "https://chat.example.org"


def unique_room() -> str:
    return f"pu-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def public_rooms(parley_env: dict[str, str]) -> Iterator[ServiceProcess]:
    """Rooms with a public URL and the metrics paths on its own origin."""
    sp = start_service("rooms", [], {**parley_env, "PARLEY_PUBLIC_URL": PUBLIC + "/",
                                     "PARLEY_METRICS_URL": "self",
                                     "PARLEY_JOIN_BURST": "500", "PARLEY_JOIN_RATE": "100"})
    yield sp
    sp.stop()


@pytest.fixture(scope="module")
def proxied_rooms(parley_env: dict[str, str]) -> Iterator[ServiceProcess]:
    """Rooms behind a proxy on loopback (as behind the single-server gateway)."""
    sp = start_service("rooms", [], {**parley_env, "PARLEY_RELAY_TTL": "3",
                                     "PARLEY_TRUSTED_PROXIES": '["127.0.0.1/32"]',
                                     "PARLEY_JOIN_BURST": "500", "PARLEY_JOIN_RATE": "100"})
    yield sp
    sp.stop()


@pytest.fixture
async def client(rooms_proc: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=rooms_proc.url, timeout=10) as c:
        yield c


async def test_create_room_forged_host_gives_a_path(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/rooms", json={}, headers=FORGED)
    assert r.status_code == 201
    assert r.json()["url"] == "/" + r.json()["name"]


async def test_join_forged_host_gives_websocket_path(client: httpx.AsyncClient) -> None:
    r = await client.post(f"/api/rooms/{unique_room()}/join", json={}, headers=FORGED)
    assert r.status_code == 200
    assert r.json()["signaling_url"] == "/ws"
    config = (await client.get("/config.json", headers=FORGED)).json()
    assert config["signaling_url"] == "/ws"


async def test_public_url_builds_every_url(public_rooms: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=public_rooms.url, timeout=10) as c:
        created = (await c.post("/api/rooms", json={}, headers=FORGED)).json()
        assert created["url"] == f"{PUBLIC}/{created['name']}"
        joined = (await c.post(f"/api/rooms/{unique_room()}/join", json={}, headers=FORGED)).json()
        assert joined["signaling_url"] == "wss://chat.example.org/ws"
        config = (await c.get("/config.json", headers=FORGED)).json()
        assert config["signaling_url"] == "wss://chat.example.org/ws"
        assert config["metrics_url"] == f"{PUBLIC}/"


def _turn_hosts(body: dict[str, object]) -> set[str]:
    hosts = set()
    for server in body["ice_servers"]:  # type: ignore[attr-defined]
        for url in server["urls"]:
            if url.startswith(("turn:", "stun:")):
                hosts.add(url.split(":")[1])
    return hosts


async def _join_with_loopback_relay(bus: NatsBus, c: httpx.AsyncClient,
                                    headers: dict[str, str]) -> dict[str, object]:
    """Announce a relay on 127.0.0.1 (as the single-server stack's does), then join."""
    rid = f"loop{uuid.uuid4().hex[:8]}"
    body: dict[str, object] = {}
    for _ in range(50):
        hb = RelayHeartbeat(relay_id=rid, public_host="127.0.0.1", allocations=0,
                            sent_at=time.time())
        await bus.publish(subjects.relay_heartbeat(rid), hb.model_dump_json().encode())
        await bus.flush()
        await asyncio.sleep(0.1)
        body = (await c.post(f"/api/rooms/{unique_room()}/join", json={}, headers=headers)).json()
        if _turn_hosts(body):
            return body
    return body


async def test_join_loopback_relay_gets_the_proxys_local_address(
        proxied_rooms: ServiceProcess, bus: NatsBus) -> None:
    async with httpx.AsyncClient(base_url=proxied_rooms.url, timeout=10) as c:
        body = await _join_with_loopback_relay(bus, c, {"X-Parley-Local-Addr": "10.9.8.7"})
    assert _turn_hosts(body) == {"10.9.8.7"}


async def test_join_loopback_relay_ignores_local_address_from_untrusted_peer(
        client: httpx.AsyncClient, bus: NatsBus) -> None:
    body = await _join_with_loopback_relay(bus, client, {"X-Parley-Local-Addr": "10.9.8.7"})
    assert _turn_hosts(body) == {"127.0.0.1"}


async def test_join_loopback_relay_for_remote_browser_never_takes_host_header(
        proxied_rooms: ServiceProcess, bus: NatsBus) -> None:
    # a remote browser behind a proxy that does not pass the local address (Caddy 2.6), no
    # public URL: the relay host may not come from the Host the request carries
    async with httpx.AsyncClient(base_url=proxied_rooms.url, timeout=10) as c:
        body = await _join_with_loopback_relay(
            bus, c, {"X-Forwarded-For": "198.51.100.9", **FORGED})
    assert _turn_hosts(body) == {"127.0.0.1"}
