"""RTCP in and out: aiortc's parser behind a wall that drops bad input, and the few packets
the SFU writes itself (RR, SR, PLI, REMB), always as compound packets (RFC 3550 §6.1).
"""

from __future__ import annotations

import struct
from typing import Final

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    AnyRtcpPacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    pack_remb_fci,
)

MAX_RTCP_BYTES: Final[int] = 1500


def parse_rtcp(data: bytes) -> list[AnyRtcpPacket] | None:
    """The packets of one compound RTCP packet, or None when any part is malformed."""
    if len(data) > MAX_RTCP_BYTES:
        return None
    try:
        return RtcpPacket.parse(data)
    except (ValueError, struct.error, IndexError):
        return None


def receiver_report(sender_ssrc: int, reports: list[RtcpReceiverInfo]) -> bytes:
    """An RR (RFC 3550 §6.4.2); with no blocks it is the head of a compound packet."""
    return bytes(RtcpRrPacket(ssrc=sender_ssrc, reports=reports[:31]))


def sender_report(ssrc: int, *, ntp_timestamp: int, rtp_timestamp: int, packets: int,
                  octets: int) -> bytes:
    """An SR (RFC 3550 §6.4.1) with no report blocks."""
    info = RtcpSenderInfo(ntp_timestamp=ntp_timestamp, rtp_timestamp=rtp_timestamp,
                          packet_count=packets & 0xFFFFFFFF, octet_count=octets & 0xFFFFFFFF)
    return bytes(RtcpSrPacket(ssrc=ssrc, sender_info=info))


def pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """A compound RR + Picture Loss Indication (RFC 4585 §6.3.1)."""
    return receiver_report(sender_ssrc, []) + bytes(
        RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=sender_ssrc, media_ssrc=media_ssrc))


def remb(sender_ssrc: int, bitrate: int, ssrcs: list[int]) -> bytes:
    """A REMB (draft-alvestrand-rmcat-remb-03 §2.2), media SSRC 0 as the draft says."""
    return bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=sender_ssrc, media_ssrc=0,
                                fci=pack_remb_fci(bitrate, ssrcs)))
