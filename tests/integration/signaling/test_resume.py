"""Resume across replicas: dropped sockets, a replica killed with SIGKILL, SIGTERM drains."""

from __future__ import annotations

import asyncio
import contextlib

import websockets

from tests.integration.signaling.conftest import Replica, Room, join, open_peer, resume


async def no_message_of(peer: object, kind: str, seconds: float) -> list[dict[str, object]]:
    """Everything `peer` receives for `seconds`; asserts none is of type `kind`."""
    got: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                got.append(await peer.recv())  # type: ignore[attr-defined]
    except TimeoutError:
        pass
    assert all(m["type"] != kind for m in got), got
    return got


async def test_resume_dropped_socket_on_other_replica(replicas: list[Replica],
                                                      room: Room) -> None:
    a = await join(replicas[0].ws, room)
    b = await join(replicas[1].ws, room)
    await a.recv_type("peer-joined")
    await b.send({"type": "media-state", "audio": False, "video": False, "screen": False})
    await a.recv_type("media-state")
    a.drop()
    a2 = await resume(replicas[1].ws, room, a)
    assert a2.peer_id == a.peer_id
    assert a2.welcome["resumed"] is True
    assert a2.resume_key != a.resume_key
    assert a2.welcome["peers"] == [{"peer_id": b.peer_id, "media": {
        "audio": False, "video": False, "screen": False}}]
    # the others saw nothing, and signals reach the resumed socket
    await b.send({"type": "signal", "to": a.peer_id, "data": {"candidate": None}})
    assert await a2.recv() == {"type": "signal", "from": b.peer_id, "data": {"candidate": None}}
    await no_message_of(b, "peer-left", 3.0)  # longer than the grace
    for p in (a2, b):
        await p.close()


async def test_resume_replaces_live_socket_with_4000(replicas: list[Replica],
                                                     room: Room) -> None:
    a = await join(replicas[0].ws, room)
    a2 = await resume(replicas[1].ws, room, a)
    assert await a.closed() == (4000, "replaced by a resumed socket")
    await a2.send({"type": "ping"})
    assert await a2.recv() == {"type": "pong"}
    await a2.close()


async def test_resume_with_wrong_key_closes_4404(replicas: list[Replica], room: Room) -> None:
    a = await join(replicas[0].ws, room)
    a.drop()
    a.resume_key = "not-the-key"
    peer = await open_peer(replicas[1].ws)
    await peer.send({"type": "join", "token": a.token, "room": room.name,  # type: ignore[attr-defined]
                     "resume": {"peer_id": a.peer_id, "key": a.resume_key}})
    assert await peer.closed() == (4404, "wrong resume key")


async def test_resume_after_grace_closes_4404_and_peer_left(replicas: list[Replica],
                                                            room: Room) -> None:
    a = await join(replicas[0].ws, room)
    b = await join(replicas[1].ws, room)
    a.drop()
    left = await b.recv_type("peer-left")
    assert left == {"type": "peer-left", "peer_id": a.peer_id, "reason": "timeout"}
    peer = await open_peer(replicas[1].ws)
    await peer.send({"type": "join", "token": a.token, "room": room.name,  # type: ignore[attr-defined]
                     "resume": {"peer_id": a.peer_id, "key": a.resume_key}})
    assert await peer.closed() == (4404, "session expired; join again")
    await b.close()


async def test_resume_after_replica_killed(fresh_replicas: list[Replica], room: Room) -> None:
    r1, r2 = fresh_replicas
    a = await join(r1.ws, room)  # comes back after the crash
    c = await join(r1.ws, room)  # never comes back
    b = await join(r2.ws, room)  # watches from the surviving replica
    r1.kill()
    for p in (a, c):
        code, _ = await p.closed()
        assert code in (None, 1006)
    a2 = await resume(r2.ws, room, a)
    assert a2.peer_id == a.peer_id
    assert {p["peer_id"] for p in a2.welcome["peers"]} == {b.peer_id, c.peer_id}
    left = await b.recv_type("peer-left")  # c, after its grace; never a
    assert left == {"type": "peer-left", "peer_id": c.peer_id, "reason": "timeout"}
    assert (await a2.recv_type("peer-left"))["peer_id"] == c.peer_id
    await a2.send({"type": "signal", "to": b.peer_id, "data": {"candidate": None}})
    assert (await b.recv_type("signal"))["from"] == a.peer_id
    await no_message_of(b, "peer-left", 1.0)
    for p in (a2, b):
        await p.close()


async def test_sigterm_closes_1001_and_peers_resume(fresh_replicas: list[Replica],
                                                     room: Room) -> None:
    r1, r2 = fresh_replicas
    a = await join(r1.ws, room)
    b = await join(r2.ws, room)
    r1.proc.send_signal(15)  # type: ignore[union-attr]
    assert await a.closed() == (1001, "server going away")
    a2 = await resume(r2.ws, room, a)
    assert a2.welcome["resumed"] is True
    await no_message_of(b, "peer-left", 3.0)
    # uvicorn re-raises the signal once shut down: "killed by SIGTERM" after a clean drain
    assert r1.proc.wait(15) in (0, -15)  # type: ignore[union-attr]
    for p in (a2, b):
        await p.close()


async def test_resume_after_client_close_without_leave(replicas: list[Replica],
                                                       room: Room) -> None:
    a = await join(replicas[0].ws, room)
    await a.ws.close(code=1001)
    a2 = await resume(replicas[0].ws, room, a)
    assert a2.welcome["resumed"] is True
    with contextlib.suppress(websockets.ConnectionClosed):
        await a2.close()


async def test_resume_after_idle_timeout(nats_server: object, redis_server: object,
                                         room: Room) -> None:
    replica = Replica(nats_server.url, redis_server.url,  # type: ignore[attr-defined]
                      env={"PARLEY_IDLE_TIMEOUT": "1.5"}).start()
    try:
        a = await join(replica.ws, room)
        assert await a.closed() == (4408, "idle timeout")  # silent: no ping
        a2 = await resume(replica.ws, room, a)
        assert a2.welcome["resumed"] is True
        await a2.close()
    finally:
        replica.stop()


async def test_socket_closed_4404_when_presence_lost(replicas: list[Replica],
                                                     room: Room) -> None:
    from services.signaling.presence import RedisPresence

    a = await join(replicas[0].ws, room)
    # as if another replica had reaped it while this one could not reach Redis
    await room.redis.delete(*RedisPresence.keys(room.key))
    assert await a.closed() == (4404, "session expired; join again")


async def test_resume_welcome_carries_what_changed_meanwhile(replicas: list[Replica],
                                                             room: Room) -> None:
    """A resumed peer missed the broadcasts of its gap: its welcome has the room's state now
    (media states, who is here, the lock), and a chat line with an id is acknowledged."""
    from services.common.roomstate import RoomState

    a = await join(replicas[0].ws, room)
    b = await join(replicas[1].ws, room)
    c = await join(replicas[1].ws, room)
    assert a.welcome["locked"] is False
    a.drop()
    await b.send({"type": "media-state", "audio": False, "video": True, "screen": False})
    await room.redis.hset(RoomState.meta_key(room.key), "locked", "1")  # rooms' lock
    await c.send({"type": "leave"})
    await b.recv_type("peer-left")
    a2 = await resume(replicas[1].ws, room, a)
    assert a2.welcome["locked"] is True
    assert a2.welcome["peers"] == [{"peer_id": b.peer_id, "media": {
        "audio": False, "video": True, "screen": False}}]
    await a2.send({"type": "chat", "text": "back", "id": "line-1"})
    assert await a2.recv_type("chat-ack") == {"type": "chat-ack", "id": "line-1"}
    got = await b.recv_type("chat")
    assert (got["id"], got["text"], got["from"]) == ("line-1", "back", a.peer_id)
    for p in (a2, b):
        await p.close()
