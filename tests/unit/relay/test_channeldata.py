"""ChannelData codec and TCP/TLS stream framing (RFC 8656 §12.4-§12.5)."""

from __future__ import annotations

import os

import pytest

from services.relay.stun import Class, Message, Method, serialize
from services.relay.turn.channeldata import StreamFramer, pack_channel_data, unpack_channel_data
from services.relay.turn.errors import BadRequest


def test_pack_channel_data_padding_only_on_streams() -> None:
    assert pack_channel_data(0x4000, b"abc") == b"\x40\x00\x00\x03abc"
    assert pack_channel_data(0x4000, b"abc", pad=True) == b"\x40\x00\x00\x03abc\x00"
    assert pack_channel_data(0x4000, b"abcd", pad=True) == b"\x40\x00\x00\x04abcd"


def test_unpack_channel_data_malformed() -> None:
    assert unpack_channel_data(b"\x40\x00\x00") is None
    assert unpack_channel_data(b"\x40\x00\x00\x05abc") is None
    assert unpack_channel_data(b"\x50\x00\x00\x01a") is None
    assert unpack_channel_data(b"\x40\x01\x00\x01a\x00\x00\x00") == (0x4001, b"a")


def test_stream_framer_split_and_merge() -> None:
    stun = serialize(Message(Method.BINDING, Class.REQUEST, os.urandom(12)))
    cd = pack_channel_data(0x4000, b"hello", pad=True)
    stream = stun + cd + stun
    framer = StreamFramer()
    frames = []
    for i in range(0, len(stream), 3):
        frames += framer.feed(stream[i : i + 3])
    assert frames == [stun, b"\x40\x00\x00\x05hello", stun]


def test_stream_framer_garbage_closes() -> None:
    with pytest.raises(BadRequest):
        StreamFramer().feed(b"\xff\x00\x00\x00")


def test_stream_framer_buffer_bound() -> None:
    framer = StreamFramer(max_buffer=100)
    with pytest.raises(BadRequest, match="too large"):
        framer.feed(b"\x00\x01\xff\xf0" + b"\x00" * 200)
