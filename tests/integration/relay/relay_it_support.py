"""Fixtures for the relay's integration tests: `parley relay` as a real subprocess on
loopback free ports, a UDP echo peer, and a raw STUN client for exact error codes."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.credentials import mint_turn_credential
from services.common.infra import free_port
from services.relay.stun import Attr, Class, Message, Method, parse_message, serialize
from services.relay.turn.auth import long_term_key

ROOT = Path(__file__).resolve().parents[3]
SECRET = "integration-secret"


def free_port_pair() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    return free_port(udp_too=True)


def free_tcp_port() -> int:
    return free_port()


def relay_port_range(size: int = 200) -> str:
    """A random relayed range below the ephemeral range (bind retries cover collisions)."""
    start = random.randrange(20000, 32000 - size)
    return f"{start}-{start + size - 1}"


class RelayProcess:
    """One `python -m services.relay` subprocess."""

    def __init__(
        self, *extra: str, workers: int = 1, env: dict[str, str] | None = None,
        port: int | None = None, ports: str | None = None,
    ) -> None:
        self.port = port or free_port_pair()
        self.http_port = free_tcp_port()
        self.ports = ports or relay_port_range()
        self.args = [
            sys.executable, "-m", "services.relay",
            "--listen", f"127.0.0.1:{self.port}", "--relay-ip", "127.0.0.1",
            "--ports", self.ports, "--secret", SECRET, "--workers", str(workers),
            "--http-host", "127.0.0.1", "--http-port", str(self.http_port), *extra,
        ]  # fmt: skip
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            self.args, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout: float = 20.0) -> RelayProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"relay exited: {self.output()}")
            try:
                if self.http("/readyz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("relay not ready")

    def output(self) -> str:
        if self.proc.poll() is None:
            return ""
        assert self.proc.stdout is not None
        return self.proc.stdout.read().decode(errors="replace")

    def terminate(self, timeout: float = 15.0, *, now: bool = False) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if now:  # a second SIGTERM skips the drain
                time.sleep(0.05)
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


@pytest.fixture
def relay_factory() -> Iterator[Callable[..., RelayProcess]]:
    started: list[RelayProcess] = []

    def start(*extra: str, ready: bool = True, **kw: Any) -> RelayProcess:
        proc = RelayProcess(*extra, **kw)
        started.append(proc)
        return proc.wait_ready() if ready else proc

    yield start
    for proc in started:
        proc.terminate(timeout=5, now=True)


@pytest.fixture
def relay(relay_factory: Callable[..., RelayProcess]) -> RelayProcess:
    """A relay that may reach peers on 127.0.0.1 (tests' echo peers live there)."""
    return relay_factory("--allow-peer", "127.0.0.1/32", "--drain-deadline", "3")


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


@pytest.fixture
async def echo_peer() -> AsyncIterator[tuple[str, int]]:
    """A UDP echo server on 127.0.0.1."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    yield transport.get_extra_info("sockname")[:2]
    transport.close()


class Inbox(asyncio.DatagramProtocol):
    """Collects datagrams (used as the aioice TURN endpoint's protocol)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, addr))


class RawClient(asyncio.DatagramProtocol):
    """A minimal TURN client on our own codec, for exact error codes."""

    def __init__(self, server: tuple[str, int], *, secret: str = SECRET, ttl: int = 3600) -> None:
        self.server = server
        cred = mint_turn_credential(secret, ttl=ttl)
        self.username, self.password = cred.username, cred.password
        self.nonce: str | None = None
        self.realm = "parley"
        self.waiters: dict[bytes, asyncio.Future[Message]] = {}
        self.data: asyncio.Queue[bytes] = asyncio.Queue()

    @classmethod
    async def open(cls, server: tuple[str, int], **kw: Any) -> RawClient:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(
            lambda: cls(server, **kw), local_addr=("127.0.0.1", 0)
        )
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data[0] >= 0x40:
            self.data.put_nowait(data)
            return
        try:
            msg = parse_message(data)
        except Exception:
            return
        fut = self.waiters.pop(msg.transaction_id, None)
        if fut is not None and not fut.done():
            fut.set_result(msg)
        elif msg.method == Method.DATA:
            self.data.put_nowait(data)

    async def request(
        self, method: Method, attrs: dict[Attr, Any] | None = None, *,
        peers: list[tuple[str, int]] | None = None, wait: float = 3.0,
    ) -> Message:  # fmt: skip
        """Send with credentials; on 401/438 learn realm+nonce and retry once."""
        for _ in range(2):
            a = dict(attrs or {})
            key = None
            if self.nonce is not None:
                a.update(
                    {Attr.USERNAME: self.username, Attr.REALM: self.realm, Attr.NONCE: self.nonce}
                )
                key = long_term_key(self.username, self.realm, self.password)
            msg = Message(method, Class.REQUEST, os.urandom(12), a, peer_addresses=peers or [])
            fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
            self.waiters[msg.transaction_id] = fut
            self.transport.sendto(serialize(msg, integrity_key=key, fingerprint=True), self.server)
            reply = await asyncio.wait_for(fut, wait)
            code = error_code(reply)
            if code in (401, 438) and (self.nonce is None or code == 438):
                self.nonce = reply.get(Attr.NONCE)
                self.realm = reply.get(Attr.REALM)
                continue
            return reply
        return reply

    async def allocate(self) -> Message:
        return await self.request(Method.ALLOCATE, {Attr.REQUESTED_TRANSPORT: 17})

    def close(self) -> None:
        self.transport.close()


def error_code(msg: Message) -> int | None:
    value = msg.get(Attr.ERROR_CODE)
    return value[0] if value else None
