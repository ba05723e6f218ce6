"""Fixtures for signalling integration tests: real replicas (subprocesses) and clients."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import websockets
from websockets.asyncio.client import ClientConnection, connect

from services.common.hashing import room_key
from tests.procs import _LOG_DIR as LOG_DIR
from services.common.infra import NatsServer, RedisServer, child_env, free_port
from services.common.roomstate import RoomState
from services.common.tokens import issue_join_token

TOKEN_KEY = "integration-token-key-0123456789abcdef"
HASH_KEY = "integration-hash-key-0123456789abcdef"
RECV_TIMEOUT = 10.0

# Fast timers so the grace and reaping happen within a test.
FAST = {
    "PARLEY_RESUME_GRACE": "2.0",
    "PARLEY_HEARTBEAT_INTERVAL": "0.5",
    "PARLEY_JOIN_TIMEOUT": "1.0",
    "PARLEY_DRAIN_TIMEOUT": "3.0",
    # every test socket comes from 127.0.0.1: the per-address limit is tested on its own
    "PARLEY_CONNECT_BURST": "100000",
}


@dataclass
class Replica:
    """One `python -m services.signaling` process on a free port."""

    nats_url: str
    redis_url: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(
        prefix="signaling-", suffix=".log", dir=LOG_DIR)[1]))

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> Replica:
        env = child_env(
            PARLEY_NATS_URL=self.nats_url, PARLEY_REDIS_URL=self.redis_url,
            PARLEY_TOKEN_KEY=TOKEN_KEY, PARLEY_HASH_KEY=HASH_KEY, PARLEY_HOST="127.0.0.1",
            PARLEY_PORT=str(self.port),
            PARLEY_LOG_LEVEL=os.environ.get("SIGNALING_TEST_LOG_LEVEL", "warning"),
            **{**FAST, **self.env})
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.signaling"], env=env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.http}/readyz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"replica not ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no cleanup at all (a crashed pod)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        if os.environ.get("KEEP_SIGNALING_LOGS") is None:
            self.log.unlink(missing_ok=True)


def _replica_pair(nats_server: NatsServer, redis_server: RedisServer) -> Iterator[list[Replica]]:
    pair = [Replica(nats_server.url, redis_server.url) for _ in range(2)]
    try:
        for r in pair:
            r.start()
        yield pair
    finally:
        for r in pair:
            r.stop()


@pytest.fixture(scope="module")
def replicas(nats_server: NatsServer, redis_server: RedisServer) -> Iterator[list[Replica]]:
    """Two replicas shared by a module's tests."""
    yield from _replica_pair(nats_server, redis_server)


@pytest.fixture
def fresh_replicas(nats_server: NatsServer,
                   redis_server: RedisServer) -> Iterator[list[Replica]]:
    """Two replicas of the test's own (to kill or stop)."""
    yield from _replica_pair(nats_server, redis_server)


class Peer:
    """A websocket client speaking the protocol."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.peer_id = ""
        self.resume_key = ""
        self.welcome: dict[str, Any] = {}

    async def send(self, msg: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(msg if isinstance(msg, (str, bytes)) else json.dumps(msg))

    async def recv(self, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:  # noqa: ASYNC109
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        return json.loads(frame)  # type: ignore[no-any-return]

    async def recv_type(self, kind: str,
                        timeout: float = RECV_TIMEOUT) -> dict[str, Any]:  # noqa: ASYNC109
        """The next message of type `kind`, skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.recv(max(0.01, deadline - time.monotonic()))
            if msg["type"] == kind:
                return msg

    async def closed(self, timeout: float = RECV_TIMEOUT) -> tuple[int | None, str]:  # noqa: ASYNC109
        """Wait for the server to close; (code, reason); other frames are skipped."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        except websockets.ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code, rcvd.reason) if rcvd else (None, "")

    async def close(self) -> None:
        await self.ws.close()

    def drop(self) -> None:
        """Vanish without a closing handshake (a lost network)."""
        self.ws.transport.abort()


@dataclass
class Room:
    """A room admitted through Redis as rooms would do it, with tokens for its peers."""

    name: str
    redis: aioredis.Redis

    @property
    def key(self) -> str:
        return room_key(HASH_KEY, self.name)

    async def admit(self, peer_id: str | None = None) -> tuple[str, str]:
        """Add a member (as rooms' join does); (peer id, token)."""
        peer = peer_id or secrets.token_hex(6)
        await RoomState(self.redis).join(self.key, peer, capacity=6, now=time.time())
        return peer, issue_join_token(TOKEN_KEY, room=self.name, room_key=self.key, peer_id=peer)


async def open_peer(url: str, *, origin: str | None = None) -> Peer:
    ws = await connect(url, proxy=None, compression=None, open_timeout=5,
                       origin=origin)  # type: ignore[arg-type]
    return Peer(ws)


async def join(url: str, room: Room, *, peer_id: str | None = None,
               media: dict[str, bool] | None = None) -> Peer:
    """Admit a peer, open a socket, join, and read the welcome."""
    peer_id, token = await room.admit(peer_id)
    peer = await open_peer(url)
    msg: dict[str, Any] = {"type": "join", "token": token, "room": room.name}
    if media is not None:
        msg["media"] = media
    await peer.send(msg)
    welcome = await peer.recv()
    assert welcome["type"] == "welcome", welcome
    peer.peer_id, peer.resume_key, peer.welcome = (welcome["peer_id"], welcome["resume_key"],
                                                   welcome)
    peer.token = token  # type: ignore[attr-defined]
    return peer


async def resume(url: str, room: Room, old: Peer) -> Peer:
    """Reconnect `old`'s peer id on `url` with its resume key."""
    peer = await open_peer(url)
    await peer.send({"type": "join", "token": old.token, "room": room.name,  # type: ignore[attr-defined]
                     "resume": {"peer_id": old.peer_id, "key": old.resume_key}})
    welcome = await peer.recv()
    assert welcome["type"] == "welcome", welcome
    peer.peer_id, peer.resume_key, peer.welcome = (welcome["peer_id"], welcome["resume_key"],
                                                   welcome)
    peer.token = old.token  # type: ignore[attr-defined]
    return peer


@pytest.fixture
async def room(redis: aioredis.Redis) -> AsyncIterator[Room]:
    yield Room(f"room-{secrets.token_hex(4)}", redis)
