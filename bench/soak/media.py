"""Soak calls with real media: two aiortc peers per room, relay-only ICE through the stack's relay.

Each peer joins as a browser does (`bench.soak.clients.join`: rooms, then the signalling
socket) and builds its `RTCPeerConnection` from the join answer's `ice_servers` (the TURN
credentials rooms minted) with `iceTransportPolicy: relay`, so every packet goes through the
relay. The second peer offers, the first answers, over the real signalling socket. Each side
sends a small synthetic video track (160x120, VP8) and silence (Opus), and the caller's data
channel is echoed by the callee. A call is held for a while, then both hang up and call
again: fresh credentials and fresh allocations every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Final

import httpx
from aiortc import (
    AudioStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from av import VideoFrame

from bench.soak.clients import Joined, Tally, join, leave, send

SETUP_TIMEOUT: Final[float] = 30.0
ECHO_TIMEOUT: Final[float] = 5.0
WIDTH, HEIGHT, FPS = 160, 120, 15
MIN_FRAMES: Final[int] = 10  # video frames each side must receive for the call to count as up


class TinyVideo(VideoStreamTrack):
    """A 160x120 grey picture at 15 fps: real VP8 frames at a small CPU cost."""

    def __init__(self) -> None:
        super().__init__()
        self._n = 0
        self._planes: list[bytes] | None = None

    async def recv(self) -> VideoFrame:
        await asyncio.sleep(1 / FPS)
        self._n += 1
        frame = VideoFrame(width=WIDTH, height=HEIGHT, format="yuv420p")
        if self._planes is None:
            self._planes = [bytes([128]) * p.buffer_size for p in frame.planes]
        for plane, data in zip(frame.planes, self._planes, strict=True):
            plane.update(data)
        frame.pts = self._n * (90000 // FPS)
        frame.time_base = Fraction(1, 90000)
        return frame


@dataclass
class MediaTally:
    """The real calls: set up, held, their setup time and what flowed."""

    calls: int = 0
    setup_ms: list[float] = field(default_factory=list)
    video_frames: int = 0
    audio_frames: int = 0
    echoes: int = 0
    failures: int = 0


def rtc_config(info: dict[str, Any]) -> RTCConfiguration:
    """The join answer's ICE servers (TURN only: relay policy), relay-only as the web client
    does with `iceTransportPolicy: "relay"`."""
    servers = [RTCIceServer(urls=[u for u in s["urls"] if u.startswith("turn:")],
                            username=s.get("username"), credential=s.get("credential"))
               for s in info["ice_servers"] if s.get("username")]
    if not servers:
        raise RuntimeError("the join answer has no TURN server (is the relay up?)")
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=RTCIceTransportPolicy.RELAY)


@dataclass
class MediaPeer:
    """One side of a call: its signalling socket, its peer connection, what it received."""

    joined: Joined
    pc: RTCPeerConnection
    tally: Tally
    media: MediaTally
    video: int = 0
    up: asyncio.Event = field(default_factory=asyncio.Event)  # MIN_FRAMES video frames in
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self.pc.addTrack(TinyVideo())
        self.pc.addTrack(AudioStreamTrack())
        self.pc.on("track", lambda track: self.tasks.append(
            asyncio.create_task(self._consume(track))))
        self.pc.on("datachannel", lambda ch: ch.on("message", ch.send))  # echo
        self.tasks.append(asyncio.create_task(self._read()))
        self.tasks.append(asyncio.create_task(self._keepalive()))

    async def _consume(self, track: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                if track.kind == "video":
                    self.video += 1
                    self.media.video_frames += 1
                    if self.video >= MIN_FRAMES:
                        self.up.set()
                else:
                    self.media.audio_frames += 1

    async def _keepalive(self) -> None:
        every = float(self.joined.welcome.get("ping_interval", 15.0))
        while True:
            await asyncio.sleep(every)
            await send(self.joined, {"type": "ping"}, self.tally)

    async def offer(self, to: str) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self._send_description(to)

    async def _send_description(self, to: str) -> None:
        desc = self.pc.localDescription
        if "typ relay" not in desc.sdp or "typ host" in desc.sdp:
            self.tally.error("media-not-relay-only", "no relayed candidate in the SDP")
        await send(self.joined, {"type": "signal", "to": to, "data": {
            "description": {"type": desc.type, "sdp": desc.sdp}}}, self.tally)

    async def _read(self) -> None:
        async for frame in self.joined.ws:
            msg = json.loads(frame)
            kind = msg.get("type", "?")
            self.tally.received[kind] += 1
            if kind == "error" and msg.get("code") == "unknown-peer":
                self.joined.unknown_peer(self.tally, str(msg.get("message")))
            elif kind == "error":
                self.tally.error(f"server-error-{msg.get('code')}", str(msg.get("message")))
            desc = msg.get("data", {}).get("description") if kind == "signal" else None
            if desc is None:
                continue
            await self.pc.setRemoteDescription(RTCSessionDescription(desc["sdp"], desc["type"]))
            if desc["type"] == "offer":
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await self._send_description(msg["from"])

    async def close(self) -> None:
        await self.pc.close()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(BaseException):
                await t


async def _echo(echoes: asyncio.Queue[str], expected: str) -> None:
    while await echoes.get() != expected:
        pass


async def _wait_up(caller: MediaPeer, callee: MediaPeer, opened: asyncio.Event) -> None:
    await opened.wait()
    await caller.up.wait()
    await callee.up.wait()


async def call(api: httpx.AsyncClient, ws_base: str, room: str, tally: Tally,
               media: MediaTally, stop: asyncio.Event, *, hold: float) -> None:
    """One real call: set up through the relay, hold for `hold` s (or until `stop`) with a
    data-channel echo a second, check media kept flowing, hang up."""
    peers: list[MediaPeer] = []
    try:
        for _ in range(2):
            joined = await join(api, ws_base, room, tally)
            peers.append(MediaPeer(joined, RTCPeerConnection(rtc_config(joined.info)),
                                   tally, media))
        callee, caller = peers
        for p in peers:
            p.start()
        channel = caller.pc.createDataChannel("soak")
        opened = asyncio.Event()
        echoes: asyncio.Queue[str] = asyncio.Queue()
        channel.on("open", opened.set)
        channel.on("message", lambda m: echoes.put_nowait(str(m)))
        started = time.perf_counter()
        await caller.offer(callee.joined.peer_id)
        try:
            await asyncio.wait_for(_wait_up(caller, callee, opened), SETUP_TIMEOUT)
        except TimeoutError:
            media.failures += 1
            tally.error("media-setup-timeout", f"video frames {caller.video}/{callee.video}")
            return
        media.calls += 1
        media.setup_ms.append(1000 * (time.perf_counter() - started))
        until = time.monotonic() + hold
        n = 0
        while time.monotonic() < until and not stop.is_set():
            before = (caller.video, callee.video)
            n += 1
            channel.send(f"echo {n}")
            try:  # SCTP is reliable: an echo is late, never lost (a late one is skipped)
                await asyncio.wait_for(_echo(echoes, f"echo {n}"), ECHO_TIMEOUT)
                media.echoes += 1
            except TimeoutError:
                tally.error("media-echo-late", f"no echo within {ECHO_TIMEOUT:.0f} s")
            await asyncio.sleep(1.0)
            if (caller.video, callee.video) == before:
                tally.error("media-stalled", "no video frame in a second")
    finally:
        for p in peers:
            await p.close()
            with contextlib.suppress(Exception):
                await leave(api, room, p.joined, tally)


async def calls(api: httpx.AsyncClient, ws_base: str, room: str, tally: Tally,
                media: MediaTally, stop: asyncio.Event, *, hold: float) -> None:
    """Call, hang up, call again in `room` until `stop`."""
    while not stop.is_set():
        try:
            await call(api, ws_base, room, tally, media, stop, hold=hold)
        except Exception as exc:
            media.failures += 1
            tally.error(f"media-{type(exc).__name__}", str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)
