"""Hypothesis: no exception escapes the parser, the framer or the server core."""

from __future__ import annotations

import os

from relay_unit_support import NOW, Sim, make_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.relay.stun import Attr, Class, DecodeError, Message, Method, parse_message, serialize
from services.relay.turn import Client
from services.relay.turn.channeldata import StreamFramer
from services.relay.turn.errors import BadRequest
import contextlib

SEED = serialize(
    Message(
        Method.ALLOCATE, Class.REQUEST, os.urandom(12),
        {Attr.REQUESTED_TRANSPORT: 17, Attr.USERNAME: "1:a", Attr.REALM: "parley",
         Attr.NONCE: "n", Attr.LIFETIME: 600, Attr.XOR_PEER_ADDRESS: ("192.0.2.1", 1)},
    ),
    integrity_key=b"k", fingerprint=True,
)  # fmt: skip


def _stunlike(body: bytes, msg_type: int) -> bytes:
    body = body[: len(body) - len(body) % 4]
    return (
        msg_type.to_bytes(2, "big")
        + len(body).to_bytes(2, "big")
        + b"\x21\x12\xa4\x42"
        + b"t" * 12
        + body
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_parse_message_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse_message(data)


@settings(max_examples=400)
@given(st.binary(max_size=200), st.integers(0, 0x3FFF))
def test_parse_message_stun_shaped_bytes(body: bytes, msg_type: int) -> None:
    with contextlib.suppress(DecodeError):
        parse_message(_stunlike(body, msg_type))


@settings(max_examples=300)
@given(st.integers(0, len(SEED) - 1), st.integers(0, 255), st.integers(1, len(SEED)))
def test_parse_message_mutated_and_truncated(pos: int, value: int, cut: int) -> None:
    data = bytearray(SEED)
    data[pos] = value
    with contextlib.suppress(DecodeError):
        parse_message(bytes(data[:cut]))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=120), max_size=8), st.sampled_from(["udp", "tcp"]))
def test_server_core_arbitrary_datagrams(datagrams: list[bytes], transport: str) -> None:
    server = make_server(allow_peer=["0.0.0.0/0"])
    sim = Sim(server, Client(transport, ("203.0.113.5", 1)))
    sim.allocate()
    for data in datagrams:
        server.handle_client(sim.client, data, NOW)
        server.handle_client(sim.client, _stunlike(data, 0x0009), NOW)
        server.peer_to_client(("198.51.100.1", 50000), ("192.0.2.1", 1), data, NOW)
    server.expire(NOW + 10_000)


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=64), max_size=10))
def test_stream_framer_arbitrary_chunks(chunks: list[bytes]) -> None:
    framer = StreamFramer(max_buffer=512)
    try:
        for chunk in chunks:
            framer.feed(chunk)
    except BadRequest:
        pass
