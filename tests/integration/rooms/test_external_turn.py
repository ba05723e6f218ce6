"""External TURN servers: a real coturn handed out by a real rooms process, then killed:
the background probe marks it down and rooms stops handing it out; back when it returns."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.common import subjects
from services.common.bus import NatsBus
from services.common.credentials import turn_password
from services.common.messages import RelayHeartbeat
from services.relay.probe import ProbeError, allocate
from services.rooms.routes import NO_RELAY_WARNING
from tests import coturn
from tests.procs import ServiceProcess, running, start_service

pytestmark = [pytest.mark.coturn,
              pytest.mark.skipif(not coturn.available(), reason="coturn's turnserver missing")]


@pytest.fixture
def turn() -> Iterator[coturn.Coturn]:
    server = coturn.start_coturn(secrets.token_urlsafe(24))
    yield server
    server.stop()


@pytest.fixture
def rooms_with_turn(parley_env: dict[str, str], turn: coturn.Coturn) -> Iterator[ServiceProcess]:
    env = {**parley_env, "PARLEY_TURN_SERVERS": json.dumps([turn.url]),
           "PARLEY_TURN_SERVER_SECRETS": json.dumps([turn.secret]),
           "PARLEY_TURN_PROBE_INTERVAL": "0.3", "PARLEY_TURN_PROBE_TIMEOUT": "1",
           "PARLEY_JOIN_BURST": "500", "PARLEY_JOIN_RATE": "100"}
    env.pop("PARLEY_TURN_SECRET")  # no Parley relay: the external server alone
    sp = start_service("rooms", [], env)
    yield sp
    sp.stop()


async def _join(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.post(f"/api/rooms/ext-turn-{secrets.token_hex(4)}/join", json={})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _until_up(client: httpx.AsyncClient, up: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while (await client.get("/readyz")).json().get("turn_servers_up") != up:
        assert time.monotonic() < deadline, f"turn_servers_up never became {up}"
        await asyncio.sleep(0.1)


async def test_external_turn_dead_server_is_no_longer_handed_out(
        rooms_with_turn: ServiceProcess, turn: coturn.Coturn) -> None:
    async with httpx.AsyncClient(base_url=rooms_with_turn.url, timeout=10) as client:
        await _until_up(client, 1)
        answer = await _join(client)
        [entry] = answer["ice_servers"]
        assert entry["urls"] == [turn.url]
        assert entry["credential"] == turn_password(turn.secret, entry["username"])
        assert NO_RELAY_WARNING not in answer["warnings"]

        turn.kill()
        await _until_up(client, 0)
        answer = await _join(client)
        assert answer["ice_servers"] == []
        assert NO_RELAY_WARNING in answer["warnings"]

        turn.start()  # back on the same port
        await _until_up(client, 1)
        assert [e["urls"] for e in (await _join(client))["ice_servers"]] == [[turn.url]]
        metrics = (await client.get("/metrics")).text
        assert 'parley_rooms_turn_server_up{server="#1"} 1.0' in metrics

    log = rooms_with_turn.output()
    assert "external TURN server #1 is down" in log and "#1 is up again" in log
    for secret_or_address in (turn.secret, "127.0.0.1", str(turn.port)):
        assert secret_or_address not in log, secret_or_address


async def test_allocate_probe_against_coturn(turn: coturn.Coturn) -> None:
    assert await allocate("127.0.0.1", turn.port, secret=turn.secret, timeout=5) > 0
    with pytest.raises(ProbeError, match="allocation failed: TransactionFailed"):
        await allocate("127.0.0.1", turn.port, secret="not-the-secret", timeout=5)


async def test_external_turn_next_to_a_parley_relay(
        parley_env: dict[str, str], bus: NatsBus, turn: coturn.Coturn) -> None:
    env = {**parley_env, "PARLEY_TURN_SERVERS": turn.url,
           "PARLEY_TURN_SERVER_SECRETS": turn.secret}
    rid = f"ext{secrets.token_hex(4)}"
    beat = RelayHeartbeat(relay_id=rid, public_host="relay.example", sent_at=time.time())
    with running("rooms", [], env) as rooms:
        async with httpx.AsyncClient(base_url=rooms.url, timeout=10) as client:
            deadline = time.monotonic() + 10
            while (await client.get("/readyz")).json()["relays"] == 0:
                assert time.monotonic() < deadline, "rooms never heard the relay"
                await bus.publish(subjects.relay_heartbeat(rid), beat.model_dump_json().encode())
                await asyncio.sleep(0.1)
            answer = await _join(client)
    *own, external = answer["ice_servers"]
    assert external["urls"] == [turn.url]
    assert external["credential"] == turn_password(turn.secret, external["username"])
    own_turn = [u for s in own for u in s["urls"] if u.startswith("turn:")]
    assert own_turn and turn.url not in own_turn  # the room's Parley relay comes first
    assert answer["warnings"] == []
