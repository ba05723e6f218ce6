"""Parse speed of the relay's STUN codec against aioice.stun (the reuse-or-not decision).

Run: .venv/bin/python -m bench.relay.codec_speed   (prints µs per parse for each).
"""

from __future__ import annotations

import os
import timeit

import aioice.stun as aioice_stun

from services.relay.stun import Attr, Class, Message, Method, parse_message, serialize


def sample() -> bytes:
    """An authenticated Send indication and a ChannelBind-sized request, 100-byte payload."""
    msg = Message(
        Method.SEND,
        Class.INDICATION,
        os.urandom(12),
        {Attr.XOR_PEER_ADDRESS: ("192.0.2.7", 40000), Attr.DATA: os.urandom(100)},
    )
    return serialize(msg, fingerprint=True)


def request() -> bytes:
    """An Allocate request with long-term credentials."""
    msg = Message(
        Method.ALLOCATE,
        Class.REQUEST,
        os.urandom(12),
        {
            Attr.REQUESTED_TRANSPORT: 17,
            Attr.USERNAME: "1999999999:abcdefgh",
            Attr.REALM: "parley",
            Attr.NONCE: "66a0c0de-0123456789abcdef",
        },
    )
    return serialize(msg, integrity_key=b"k" * 16, fingerprint=True)


def main() -> None:
    """Print µs per parse for both codecs on both samples."""
    for name, data in (("send-indication", sample()), ("allocate-request", request())):
        n = 20000
        ours = timeit.timeit(lambda d=data: parse_message(d), number=n) / n * 1e6
        theirs = timeit.timeit(lambda d=data: aioice_stun.parse_message(d), number=n) / n * 1e6
        print(
            f"{name:18s} parley {ours:6.2f} µs   aioice {theirs:6.2f} µs   "
            f"ratio {theirs / ours:4.2f}"
        )


if __name__ == "__main__":
    main()
