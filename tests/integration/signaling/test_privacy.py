"""The room name never reaches a NATS subject, a bus payload or a Redis key."""

from __future__ import annotations

import asyncio

from services.common.bus import Envelope, NatsBus
from tests.integration.signaling.conftest import Replica, Room, join


async def test_room_name_never_in_subjects_payloads_or_keys(
        replicas: list[Replica], room: Room, bus: NatsBus) -> None:
    seen: list[Envelope] = []

    async def spy(env: Envelope) -> None:
        seen.append(env)

    sub = await bus.subscribe(">", spy)
    await bus.flush()
    a = await join(replicas[0].ws, room)
    b = await join(replicas[1].ws, room)
    await b.send({"type": "media-state", "audio": False, "video": True, "screen": False})
    await a.send({"type": "signal", "to": b.peer_id, "data": {"candidate": None}})
    await a.send({"type": "chat", "text": "hi"})
    await b.recv_type("chat")
    await a.send({"type": "leave"})
    await b.recv_type("peer-left")
    await asyncio.sleep(0.2)
    await sub.unsubscribe()

    assert any(env.subject.startswith("parley.room.") for env in seen)
    name = room.name.encode()
    for env in seen:
        assert room.name not in env.subject
        assert name not in env.data
    keys = await room.redis.keys("*")
    assert any(k.startswith("parley:sig:") for k in keys)
    assert all(room.name not in k for k in keys)
    for k in keys:
        if await room.redis.type(k) == "hash":
            for field, value in (await room.redis.hgetall(k)).items():
                assert room.name not in field and room.name not in value
    await b.close()
