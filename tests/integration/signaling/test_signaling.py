"""Two real signalling replicas on real NATS and Redis: routing, limits, close codes."""

from __future__ import annotations

import json
import time

import httpx
import websockets

from services.common.tokens import issue_join_token
from tests.integration.signaling.conftest import (
    TOKEN_KEY,
    Replica,
    Room,
    join,
    open_peer,
)

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


async def test_signaling_health_ready_metrics(replicas: list[Replica]) -> None:
    async with httpx.AsyncClient(base_url=replicas[0].http) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).status_code == 200
        text = (await client.get("/metrics")).text
    assert "parley_signaling_connections" in text
    assert "parley_signaling_fanout_seconds" in text


async def test_signaling_peers_on_two_replicas_negotiate(replicas: list[Replica],
                                                         room: Room) -> None:
    a = await join(replicas[0].ws, room, media={"audio": False, "video": True, "screen": False})
    assert a.welcome["peers"] == []
    assert a.welcome["ping_interval"] > 0
    b = await join(replicas[1].ws, room)
    assert b.welcome["peers"] == [{"peer_id": a.peer_id, "media": {
        "audio": False, "video": True, "screen": False}}]
    joined = await a.recv_type("peer-joined")
    assert joined["peer_id"] == b.peer_id

    # the newcomer offers to the peers in its welcome
    offer = {"description": {"type": "offer", "sdp": SDP}}
    await b.send({"type": "signal", "to": a.peer_id, "data": offer})
    assert await a.recv() == {"type": "signal", "from": b.peer_id, "data": offer}
    answer = {"description": {"type": "answer", "sdp": SDP}}
    await a.send({"type": "signal", "to": b.peer_id, "data": answer})
    assert await b.recv() == {"type": "signal", "from": a.peer_id, "data": answer}
    cand = {"candidate": {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
                          "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "u"}}
    await a.send({"type": "signal", "to": b.peer_id, "data": cand})
    await a.send({"type": "signal", "to": b.peer_id, "data": {"candidate": None}})
    assert (await b.recv())["data"] == cand
    assert (await b.recv())["data"] == {"candidate": None}

    await b.send({"type": "media-state", "audio": True, "video": False, "screen": True})
    assert await a.recv() == {"type": "media-state", "from": b.peer_id, "audio": True,
                              "video": False, "screen": True}
    await a.send({"type": "chat", "text": "hello over two replicas"})
    chat = await b.recv()
    assert (chat["type"], chat["from"], chat["text"]) == ("chat", a.peer_id,
                                                         "hello over two replicas")

    # a third peer sees the current media state of both in its welcome
    c = await join(replicas[0].ws, room)
    media = {p["peer_id"]: p["media"] for p in c.welcome["peers"]}
    assert media == {a.peer_id: {"audio": False, "video": True, "screen": False},
                     b.peer_id: {"audio": True, "video": False, "screen": True}}

    await a.send({"type": "leave"})
    assert (await a.closed())[0] == 1000
    for other in (b, c):
        left = await other.recv_type("peer-left")
        assert left == {"type": "peer-left", "peer_id": a.peer_id, "reason": "left"}
    for p in (b, c):
        await p.close()


async def test_signaling_signal_to_unknown_peer(replicas: list[Replica], room: Room) -> None:
    a = await join(replicas[0].ws, room)
    await a.send({"type": "signal", "to": "nobody", "data": {"candidate": None}})
    assert await a.recv() == {"type": "error", "code": "unknown-peer",
                              "message": "no such peer in the room", "ref": "signal"}
    await a.close()


async def test_signaling_malformed_input_keeps_socket(replicas: list[Replica],
                                                      room: Room) -> None:
    a = await join(replicas[1].ws, room)
    await a.send("{not json")
    assert (await a.recv())["code"] == "bad-message"
    await a.send(json.dumps({"type": "teleport"}))
    assert await a.recv() == {"type": "error", "code": "unknown-type",
                              "message": "unknown message type 'teleport'", "ref": "teleport"}
    await a.send(json.dumps({"type": "media-state", "audio": 1}))
    err = await a.recv()
    assert (err["code"], err["ref"]) == ("bad-message", "media-state")
    await a.send(json.dumps({"type": "chat", "text": "x" * 70_000}))
    assert (await a.recv())["code"] == "too-large"
    await a.send(b'{"type":"ping"}')
    assert await a.recv() == {"type": "pong"}
    await a.close()


async def test_signaling_deeply_nested_json_is_bad_message(replicas: list[Replica],
                                                         room: Room) -> None:
    a = await join(replicas[0].ws, room)
    await a.send('{"type":"chat","text":' + "[" * 5000 + "]" * 5000 + "}")
    assert await a.recv() == {"type": "error", "code": "bad-message",
                              "message": "JSON nested deeper than 32 levels"}
    await a.send(b"[" * 5000)
    assert (await a.recv())["code"] == "bad-message"
    await a.send({"type": "ping"})
    assert await a.recv() == {"type": "pong"}
    await a.close()


async def test_signaling_oversized_repeatedly_closes_1009(replicas: list[Replica],
                                                         room: Room) -> None:
    a = await join(replicas[0].ws, room)
    big = json.dumps({"type": "chat", "text": "x" * 70_000})
    for _ in range(20):
        try:
            await a.send(big)
        except websockets.ConnectionClosed:
            break
    code, _ = await a.closed()
    assert code == 1009


async def test_signaling_flood_rate_limited_then_4429(replicas: list[Replica],
                                                     room: Room) -> None:
    a = await join(replicas[1].ws, room)
    for _ in range(400):
        try:
            await a.send('{"type":"ping"}')
        except websockets.ConnectionClosed:
            break
    kinds: list[str] = []
    try:
        while True:
            msg = await a.recv()
            kinds.append(msg.get("code", msg["type"]))
    except websockets.ConnectionClosed as exc:
        assert exc.rcvd is not None and exc.rcvd.code == 4429
    assert "rate-limited" in kinds


async def test_signaling_no_join_closes_4408(replicas: list[Replica]) -> None:
    peer = await open_peer(replicas[0].ws)
    assert await peer.closed() == (4408, "join timeout")


async def test_signaling_invalid_token_closes_4401(replicas: list[Replica], room: Room) -> None:
    peer = await open_peer(replicas[0].ws)
    await peer.send({"type": "join", "token": "not-a-token", "room": room.name})
    assert await peer.closed() == (4401, "invalid token")


async def test_signaling_expired_token_closes_4401(replicas: list[Replica], room: Room) -> None:
    peer_id, _ = await room.admit()
    old = issue_join_token(TOKEN_KEY, room=room.name, room_key=room.key, peer_id=peer_id,
                           now=time.time() - 600)
    peer = await open_peer(replicas[1].ws)
    await peer.send({"type": "join", "token": old, "room": room.name})
    assert await peer.closed() == (4401, "token expired")


async def test_signaling_other_rooms_token_closes_4403(replicas: list[Replica],
                                                       room: Room) -> None:
    _, token = await room.admit()
    peer = await open_peer(replicas[0].ws)
    await peer.send({"type": "join", "token": token, "room": "some-other-room"})
    assert await peer.closed() == (4403, "token is for another room")


async def test_signaling_not_a_member_closes_4409(replicas: list[Replica], room: Room) -> None:
    token = issue_join_token(TOKEN_KEY, room=room.name, room_key=room.key, peer_id="ghost")
    peer = await open_peer(replicas[0].ws)
    await peer.send({"type": "join", "token": token, "room": room.name})
    assert await peer.closed() == (4409, "not a member of the room; join again")


async def test_signaling_join_twice_with_one_token_closes_4401(replicas: list[Replica],
                                                               room: Room) -> None:
    a = await join(replicas[0].ws, room)
    again = await open_peer(replicas[1].ws)
    await again.send({"type": "join", "token": a.token, "room": room.name})  # type: ignore[attr-defined]
    assert await again.closed() == (4401, "peer already connected; resume it instead")
    await a.close()


async def test_signaling_foreign_origin_refused(replicas: list[Replica]) -> None:
    # Refused with a close code and words the page shows (a refused handshake would reach
    # the page as a bare 1006); the socket's messages are never read.
    from services.signaling.node import ORIGIN_REFUSED_REASON

    peer = await open_peer(replicas[0].ws, origin="https://evil.example")
    assert await peer.closed() == (4003, ORIGIN_REFUSED_REASON)


async def test_signaling_same_host_origin_accepted(replicas: list[Replica]) -> None:
    peer = await open_peer(replicas[0].ws, origin="http://127.0.0.1:8080")
    await peer.send({"type": "ping"})
    assert await peer.recv() == {"type": "pong"}
    await peer.close()
