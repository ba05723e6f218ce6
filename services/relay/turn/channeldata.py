"""ChannelData messages and stream framing of STUN + ChannelData over TCP/TLS.

RFC 8656 §12.4: a 4-byte header (channel number, length) then the application data;
over TCP and TLS it is padded to a multiple of four bytes, over UDP it need not be.
RFC 8656 §12.5 / RFC 4571-style framing: on a stream, STUN messages and ChannelData
follow each other back to back and are told apart by the first two bits.
"""

from __future__ import annotations

import struct
from typing import Final

from ..stun.constants import HEADER_LENGTH
from .errors import BadRequest

_HDR: Final = struct.Struct("!HH")
MAX_FRAME: Final[int] = 65535 + HEADER_LENGTH


def pack_channel_data(channel: int, payload: bytes, *, pad: bool = False) -> bytes:
    """A ChannelData message; `pad` to four bytes on stream transports."""
    header = _HDR.pack(channel, len(payload))
    if pad and len(payload) % 4:
        return header + payload + b"\x00" * (-len(payload) % 4)
    return header + payload


def unpack_channel_data(data: bytes) -> tuple[int, bytes] | None:
    """Channel number and payload, or None if malformed (drop it, RFC 8656 §12.6)."""
    if len(data) < 4:
        return None
    channel, length = _HDR.unpack_from(data)
    if not 0x4000 <= channel <= 0x4FFF or 4 + length > len(data):
        return None
    return channel, data[4 : 4 + length]


class StreamFramer:
    """Splits a TCP/TLS byte stream into STUN messages and ChannelData frames."""

    def __init__(self, *, max_buffer: int = 4 * MAX_FRAME) -> None:
        self._buffer = bytearray()
        self.max_buffer = max_buffer

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete frames (ChannelData padding removed).

        Raises:
            BadRequest: the stream is not STUN/ChannelData; close the connection.
        """
        buf = self._buffer
        buf += data
        frames: list[bytes] = []
        pos = 0
        size = len(buf)
        while size - pos >= 4:
            first = buf[pos]
            length = (buf[pos + 2] << 8) | buf[pos + 3]
            if first < 0x40:
                total = HEADER_LENGTH + length
                frame_len = total
            elif first < 0x80:
                frame_len = 4 + length
                total = 4 + length + (-length % 4)
            else:
                raise BadRequest("not STUN or ChannelData")
            if size - pos < total:
                break
            frames.append(bytes(buf[pos : pos + frame_len]))
            pos += total
        if pos:
            del buf[:pos]
        if len(buf) > self.max_buffer:
            raise BadRequest("frame too large")
        return frames
