"""Signalling-only soak clients: join through rooms, talk as a browser would, leave, rejoin.

One `Visit` is what a tab does for one call, minus the media: `POST /api/rooms/{name}/join`,
open the websocket, `join`, send an offer and three ICE candidates to every peer already
there, answer the offers of later peers, send chat lines and media-state changes and the
protocol pings of the welcome's `ping_interval`, then `leave` on the socket and
`POST .../leave`. `churn` repeats visits until told to stop. Every unexpected answer is
counted in `Tally` by kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from websockets.asyncio.client import ClientConnection, connect

STEP_TIMEOUT: Final[float] = 15.0
#: A plausible browser offer: the size and shape matter (60 000 characters is the limit).
FAKE_SDP: Final[str] = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" + (
    "a=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:bench\r\na=ice-pwd:benchbenchbenchbenchbench\r\na=setup:actpass\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109\r\n"
    "c=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\n"
) * 3


def candidate(i: int) -> dict[str, Any]:
    return {"candidate": f"candidate:{842163049 + i} 1 udp 1677729535 127.0.0.1 {50000 + i} "
                         "typ relay raddr 0.0.0.0 rport 0 generation 0 network-cost 999",
            "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "bench"}


@dataclass
class Tally:
    """What the soak's clients did and what went wrong, by kind."""

    visits: int = 0
    joins: int = 0
    leaves: int = 0
    sent: int = 0
    received: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    join_ms: list[float] = field(default_factory=list)
    #: `unknown-peer` answers to a signal sent to a peer that left meanwhile (its
    #: `peer-left` came first): the documented outcome of a signal crossing a leave.
    crossed_leave: int = 0
    started: float = field(default_factory=time.monotonic)

    def error(self, kind: str, detail: str = "") -> None:
        self.errors[kind] += 1
        if len(self.examples) < 10:
            at = time.monotonic() - self.started
            self.examples.append(f"{kind} at {at:.0f} s: {detail}"[:300])


@dataclass
class Joined:
    """A peer in a room: its join answer and its open, joined socket."""

    info: dict[str, Any]
    ws: ClientConnection
    welcome: dict[str, Any]
    signalled: set[str] = field(default_factory=set)  # peers this one sent a signal to
    gone: set[str] = field(default_factory=set)  # peers whose `peer-left` came

    def unknown_peer(self, tally: Tally, message: str) -> None:
        """An `unknown-peer` answer: a crossed leave if a peer signalled has left, else an
        error (the server forgot a peer that is still there)."""
        if self.signalled & self.gone:
            tally.crossed_leave += 1
        else:
            tally.error("server-error-unknown-peer", message)

    @property
    def peer_id(self) -> str:
        return str(self.info["peer_id"])


async def join(api: httpx.AsyncClient, ws_base: str, room: str, tally: Tally,
               *, media: dict[str, bool] | None = None) -> Joined:
    """Join `room` through rooms, open its signalling socket and `join` there.

    Raises:
        RuntimeError: the API or the socket refused, with what they said.
    """
    started = time.perf_counter()
    r = await api.post(f"/api/rooms/{room}/join", json={"password": None})
    if r.status_code != 200:
        tally.error(f"join-http-{r.status_code}", r.text[:200])
        raise RuntimeError(f"join answered {r.status_code}")
    info = r.json()
    url = info["signaling_url"]
    url = ws_base + url if url.startswith("/") else url
    ws = await connect(url, proxy=None, compression=None, open_timeout=STEP_TIMEOUT,
                       ping_interval=None, max_queue=256)
    try:
        await ws.send(json.dumps({"type": "join", "token": info["token"],
                                  "room": info["room"]["name"],
                                  "media": media or {"audio": True, "video": True,
                                                     "screen": False}}))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))
    except BaseException:
        await ws.close()
        raise
    if welcome.get("type") != "welcome":
        await ws.close()
        tally.error("join-refused", str(welcome)[:200])
        raise RuntimeError("signalling refused the join")
    tally.joins += 1
    tally.join_ms.append(1000 * (time.perf_counter() - started))
    return Joined(info, ws, welcome)


async def leave(api: httpx.AsyncClient, room: str, peer: Joined, tally: Tally) -> None:
    """`leave` on the socket (answered by a 1000 close), then `POST .../leave`."""
    with contextlib.suppress(Exception):
        await peer.ws.send('{"type":"leave"}')
    try:
        await asyncio.wait_for(peer.ws.wait_closed(), STEP_TIMEOUT)
    except TimeoutError:
        tally.error("leave-no-close")
    code = peer.ws.close_code
    if code not in (1000, None):
        tally.error(f"leave-close-{code}", str(peer.ws.close_reason))
    await peer.ws.close()
    r = await api.post(f"/api/rooms/{room}/leave", json={"token": peer.info["token"]})
    if r.status_code != 204:
        tally.error(f"leave-http-{r.status_code}", r.text[:200])
    tally.leaves += 1


async def send(peer: Joined, message: dict[str, Any], tally: Tally) -> None:
    if message["type"] == "signal":
        peer.signalled.add(message["to"])
    await peer.ws.send(json.dumps(message))
    tally.sent += 1


async def _offer(peer: Joined, to: str, kind: str, tally: Tally) -> None:
    await send(peer, {"type": "signal", "to": to,
                      "data": {"description": {"type": kind, "sdp": FAKE_SDP}}}, tally)
    for i in range(3):
        await send(peer, {"type": "signal", "to": to, "data": {"candidate": candidate(i)}},
                   tally)


async def _read(peer: Joined, tally: Tally) -> None:
    """Count what arrives; answer offers (with an answer and candidates) as a browser does."""
    async for frame in peer.ws:
        msg = json.loads(frame)
        kind = msg.get("type", "?")
        tally.received[kind] += 1
        if kind == "peer-left":
            peer.gone.add(msg.get("peer_id", ""))
        elif kind == "error" and msg.get("code") == "unknown-peer":
            peer.unknown_peer(tally, str(msg.get("message")))
        elif kind == "error":
            tally.error(f"server-error-{msg.get('code')}", str(msg.get("message")))
        elif kind == "signal":
            desc = msg.get("data", {}).get("description")
            if desc and desc.get("type") == "offer":
                await _offer(peer, msg["from"], "answer", tally)


async def visit(api: httpx.AsyncClient, ws_base: str, room: str, tally: Tally,
                rng: random.Random, stop: asyncio.Event, *, stay: float) -> None:
    """One call without media: join, negotiate with who is there, talk for `stay` s (or
    until `stop`), leave."""
    peer = await join(api, ws_base, room, tally)
    tally.visits += 1
    reader = asyncio.create_task(_read(peer, tally))
    try:
        for other in peer.welcome.get("peers", []):
            await _offer(peer, other["peer_id"], "offer", tally)
        ping_every = float(peer.welcome.get("ping_interval", 15.0))
        next_ping = time.monotonic() + ping_every
        until = time.monotonic() + stay
        while time.monotonic() < until and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(rng.uniform(2.0, 6.0),
                                                        max(0.0, until - time.monotonic())))
            if reader.done() or stop.is_set():
                break
            roll = rng.random()
            if roll < 0.5:
                await send(peer, {"type": "chat", "text": f"soak {time.time():.3f}"}, tally)
            else:
                await send(peer, {"type": "media-state", "audio": rng.random() < 0.5,
                                  "video": True, "screen": False, "name": "Soak"}, tally)
            if time.monotonic() >= next_ping:
                await send(peer, {"type": "ping"}, tally)
                next_ping = time.monotonic() + ping_every
        if reader.done() and reader.exception() is None:
            tally.error("socket-closed-early", f"code {peer.ws.close_code}")
        await leave(api, room, peer, tally)
    finally:
        if not reader.done():
            reader.cancel()
        with contextlib.suppress(BaseException):
            await reader


async def churn(api: httpx.AsyncClient, ws_base: str, room: str, tally: Tally,
                rng: random.Random, stop: asyncio.Event, *, stay: tuple[float, float],
                pause: tuple[float, float]) -> None:
    """Visit `room` again and again (stays and pauses drawn from the ranges) until `stop`."""
    with contextlib.suppress(TimeoutError):  # spread the first joins out
        await asyncio.wait_for(stop.wait(), rng.uniform(*pause))
    while not stop.is_set():
        try:
            await visit(api, ws_base, room, tally, rng, stop, stay=rng.uniform(*stay))
        except Exception as exc:
            tally.error(f"visit-{type(exc).__name__}", str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(*pause))
