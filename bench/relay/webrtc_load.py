"""WebRTC-shaped relay load: pairs of TURN clients exchanging audio and video ChannelData.

Each pair allocates on the server, binds a channel to the other's relayed address and
sends, in both directions, an audio packet every 20 ms (90-160 bytes) and a video frame
every 33 ms as a burst of 3-6 packets of 1150-1200 bytes that differ by a byte or so (the
last of a frame shorter), as a browser does. Blocking sockets and our own STUN codec;
one process, so the client side is not free: compare servers in one run, not across runs.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import socket
import time
from dataclasses import dataclass

from services.common.credentials import mint_turn_credential
from services.relay.stun import Attr, Class, Message, Method, parse_message, serialize
from services.relay.turn.auth import long_term_key
from services.relay.turn.channeldata import pack_channel_data


class TurnClient:
    """A minimal blocking TURN client (UDP) with REST credentials."""

    def __init__(self, server: tuple[str, int], secret: str) -> None:
        self.server = server
        cred = mint_turn_credential(secret, ttl=3600)
        self.username, self.password = cred.username, cred.password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2)
        self.realm = "parley"
        self.nonce: str | None = None
        self.relayed: tuple[str, int] = ("", 0)
        self.received = 0

    def request(self, method: Method, attrs: dict[Attr, object],
                peers: list[tuple[str, int]] | None = None) -> Message:  # fmt: skip
        for _ in range(3):
            a = dict(attrs)
            key = None
            if self.nonce is not None:
                a.update({Attr.USERNAME: self.username, Attr.REALM: self.realm,
                          Attr.NONCE: self.nonce})  # fmt: skip
                key = long_term_key(self.username, self.realm, self.password)
            msg = Message(method, Class.REQUEST, os.urandom(12), a, peer_addresses=peers or [])
            self.sock.sendto(serialize(msg, integrity_key=key, fingerprint=True), self.server)
            while True:
                data = self.sock.recv(65536)
                if data[0] < 0x40:
                    reply = parse_message(data)
                    if reply.transaction_id == msg.transaction_id:
                        break
            error = reply.get(Attr.ERROR_CODE)
            if error and error[0] in (401, 438):
                self.nonce, self.realm = reply.get(Attr.NONCE), reply.get(Attr.REALM)
                continue
            if error:
                raise RuntimeError(f"{method.name}: {error}")
            return reply
        raise RuntimeError("authentication failed")

    def allocate(self) -> None:
        reply = self.request(Method.ALLOCATE, {Attr.REQUESTED_TRANSPORT: 17})
        self.relayed = reply.get(Attr.XOR_RELAYED_ADDRESS)

    def bind(self, number: int, peer: tuple[str, int]) -> None:
        self.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: number}, [peer])


@dataclass
class WebRtcResult:
    sent: int
    received: int
    seconds: float


def connect_pairs(server: tuple[str, int], secret: str, pairs: int) -> list[TurnClient]:
    """Allocate 2 x `pairs` clients and bind each to its partner's relayed address."""
    clients = [TurnClient(server, secret) for _ in range(2 * pairs)]
    for c in clients:
        c.allocate()
    for i in range(0, len(clients), 2):
        a, b = clients[i], clients[i + 1]
        a.bind(0x4000, b.relayed)
        b.bind(0x4000, a.relayed)
    for c in clients:
        c.sock.setblocking(False)
    return clients


def run_load(clients: list[TurnClient], seconds: float, seed: int = 1) -> WebRtcResult:
    """Send the audio+video pattern from every client for `seconds`; count what arrives."""
    rng = random.Random(seed)
    socks = {c.sock.fileno(): c for c in clients}
    sent = 0
    start = time.monotonic()
    # every client on its own phase, as independent browsers are
    audio = [start + rng.uniform(0, 0.020) for _ in clients]
    video = [start + rng.uniform(0, 0.033) for _ in clients]
    base = [rng.randrange(1150, 1190) for _ in clients]
    while (now := time.monotonic()) < start + seconds:
        for i, c in enumerate(clients):
            if now >= audio[i]:
                audio[i] += 0.020
                _send(c, pack_channel_data(0x4000, os.urandom(rng.randrange(90, 161))))
                sent += 1
            if now >= video[i]:
                video[i] += 0.033
                burst = rng.randrange(3, 7)
                for k in range(burst):
                    last = k == burst - 1
                    size = rng.randrange(300, 1100) if last else base[i] + rng.randrange(-1, 2)
                    _send(c, pack_channel_data(0x4000, b"v" * size))
                    sent += 1
        _receive(socks, min(min(audio), min(video)) - time.monotonic())
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        _receive(socks, 0.05)
    return WebRtcResult(sent, sum(c.received for c in clients), seconds)


def _send(client: TurnClient, data: bytes) -> None:
    with contextlib.suppress(BlockingIOError):
        client.sock.sendto(data, client.server)


def _receive(socks: dict[int, TurnClient], timeout: float) -> None:
    ready, _, _ = select.select(list(socks), [], [], max(0.0, timeout))
    for fd in ready:
        client = socks[fd]
        while True:
            try:
                data = client.sock.recv(65536)
            except BlockingIOError:
                break
            if data and 0x40 <= data[0] < 0x80:
                client.received += 1


def close(clients: list[TurnClient]) -> None:
    for c in clients:
        c.sock.close()
