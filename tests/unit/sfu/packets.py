"""Packet builders for the SFU's unit tests (plaintext RTP and RTCP as browsers send them)."""

from __future__ import annotations

import struct

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    pack_remb_fci,
)

OPUS, VP8 = 111, 96
VP8_KEY = bytes([0x10, 0x00, 0x9D, 0x01, 0x2A])  # S=1 PID=0, then P=0 (key frame)
VP8_DELTA = bytes([0x10, 0x01, 0x00])
VP8_CONTINUATION = bytes([0x00, 0x00])


def rtp(ssrc: int, seq: int, ts: int, *, pt: int = VP8, payload: bytes = VP8_DELTA,
        marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + payload


def nack(sender: int, media: int, lost: list[int]) -> bytes:
    return bytes(RtcpRrPacket(ssrc=sender)) + bytes(
        RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=sender, media_ssrc=media, lost=lost))


def pli(sender: int, media: int, *, fir: bool = False) -> bytes:
    fmt = RTCP_PSFB_FIR if fir else RTCP_PSFB_PLI
    return bytes(RtcpRrPacket(ssrc=sender)) + bytes(
        RtcpPsfbPacket(fmt=fmt, ssrc=sender, media_ssrc=media))


def remb(sender: int, bitrate: int, ssrcs: list[int]) -> bytes:
    return bytes(RtcpRrPacket(ssrc=sender)) + bytes(RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=sender, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)))


def sr(ssrc: int, *, ntp: int, rtp_ts: int) -> bytes:
    info = RtcpSenderInfo(ntp_timestamp=ntp, rtp_timestamp=rtp_ts, packet_count=10,
                          octet_count=1000)
    return bytes(RtcpSrPacket(ssrc=ssrc, sender_info=info))
