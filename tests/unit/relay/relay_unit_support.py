"""Support for the relay's unit tests: captured packets, a scripted TURN client, fixtures."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest

from services.common.credentials import mint_turn_credential
from services.relay.stun import Attr, Class, Message, Method, parse_message, serialize
from services.relay.turn import Client, OpenRelay, ServerConfig, ToClient, TurnServer
from services.relay.turn.auth import long_term_key
from services.relay.turn.policy import parse_networks

DATA = pathlib.Path(__file__).resolve().parents[2] / "data"
SECRET = "s3cret"
NOW = 1_700_000_000.0
RELAY_IP = "198.51.100.1"


def load_hex(name: str) -> bytes:
    """A captured packet from tests/data/stun (hex, '#' comment lines)."""
    text = (DATA / "stun" / name).read_text()
    return bytes.fromhex(" ".join(ln for ln in text.splitlines() if not ln.startswith("#")))


class Sim:
    """A scripted TURN client talking to a `TurnServer` with no sockets."""

    def __init__(self, server: TurnServer, client: Client, *, secret: str = SECRET) -> None:
        self.server = server
        self.client = client
        cred = mint_turn_credential(secret, ttl=3600, now=NOW)
        self.username, self.password = cred.username, cred.password
        self.nonce: str | None = None
        self.next_port = 50000

    @property
    def key(self) -> bytes:
        return long_term_key(self.username, "parley", self.password)

    def request(
        self,
        method: Method,
        attrs: dict[Attr, Any] | None = None,
        *,
        now: float = NOW,
        peers: list[tuple[str, int]] | None = None,
        auth: bool = True,
        sha256: bool = False,
        txid: bytes | None = None,
        key: bytes | None = None,
    ) -> tuple[Message | None, list[Any]]:
        """Send a request (learning the nonce first if needed); return response + outputs."""
        if auth and self.nonce is None:
            self.nonce = self.server.auth.nonce(now)
        a: dict[Attr, Any] = dict(attrs or {})
        if auth:
            a.update({Attr.USERNAME: self.username, Attr.REALM: "parley", Attr.NONCE: self.nonce})
        msg = Message(method, Class.REQUEST, txid or os.urandom(12), a, peer_addresses=peers or [])
        data = serialize(
            msg, integrity_key=(key or self.key) if auth else None, integrity_sha256=sha256,
            fingerprint=True,
        )  # fmt: skip
        return self.deliver(data, now)

    def deliver(self, data: bytes, now: float = NOW) -> tuple[Message | None, list[Any]]:
        """Feed raw bytes; complete OpenRelay like the shell would; parse the reply."""
        outputs = self.server.handle_client(self.client, data, now)
        done: list[Any] = []
        for out in outputs:
            if isinstance(out, OpenRelay):
                relayed = (RELAY_IP, self.next_port)
                self.next_port += 1
                done.extend(self.server.relay_opened(out.client, relayed, now))
            else:
                done.append(out)
        replies = [o for o in done if isinstance(o, ToClient) and o.data[0] < 0x40]
        msg = parse_message(replies[0].data) if replies else None
        return msg, done

    def allocate(self, now: float = NOW, **attrs: Any) -> Message:
        a: dict[Attr, Any] = {Attr.REQUESTED_TRANSPORT: 17}
        response, _ = self.request(Method.ALLOCATE, a, now=now)
        assert response is not None
        return response


def error_code(msg: Message | None) -> int | None:
    """The ERROR-CODE of a response, or None for success."""
    assert msg is not None
    value = msg.get(Attr.ERROR_CODE)
    return value[0] if value else None


def make_server(**overrides: Any) -> TurnServer:
    """A core with test defaults: relay IP in TEST-NET-2, ports 50000-50999."""
    config: dict[str, Any] = {
        "secrets": (SECRET,),
        "relay_ip": RELAY_IP,
        "relay_ports": (50000, 50999),
        "request_rate": 0.0,
    }
    config.update(overrides)
    if "allow_peer" in config:
        config["allow_peer"] = parse_networks(config["allow_peer"])
    return TurnServer(ServerConfig(**config), nonce_key=b"n" * 16)


@pytest.fixture
def server() -> TurnServer:
    return make_server()


@pytest.fixture
def sim(server: TurnServer) -> Sim:
    return Sim(server, Client("udp", ("203.0.113.5", 40000)))
