"""The forwarding core of one room: packets in from one participant, packets out to others.

Sans-I/O: `on_rtp` and `on_rtcp` take a participant's plaintext packet (SRTP already
removed by the shell) and `now`, and return `(peer_id, plaintext packet)` pairs for the
shell to protect and send; `tick` returns the periodic reports. No await, no queue.

Every participant publishes at most one audio and one video stream and receives through
fixed receive slots (docs/sfu.md, "Receive slots"): slot *i* of a subscriber carries the
publisher it mapped there, on the slot's own SSRCs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final, Literal

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

from . import rtcp
from .cache import DEFAULT_SIZE, RetransmissionCache
from .reception import ReceptionStats
from .rewrite import OutboundStream
from .rtpheader import is_vp8_keyframe, parse_header, rewrite
from .throttle import DEFAULT_INTERVAL, KeyframeThrottle

Kind = Literal["audio", "video"]
Out = tuple[str, bytes]
CLOCK: Final[dict[str, int]] = {"audio": 48000, "video": 90000}
SFU_SSRC: Final[int] = 0x5346_5531  # the SFU's own RTCP sender SSRC ("SFU1")
REMB_MIN: Final[int] = 50_000
REMB_MAX_AGE: Final[float] = 5.0
MAX_NACKS: Final[int] = 64  # sequence numbers answered per NACK packet


@dataclass(frozen=True, slots=True)
class Slot:
    """One receive slot of a subscriber: the SSRCs the SFU sends on."""

    audio_ssrc: int
    video_ssrc: int


@dataclass(frozen=True, slots=True)
class PeerMedia:
    """What one participant's offer/answer settled: its streams, payload types and slots."""

    audio_ssrc: int | None
    video_ssrc: int | None
    audio_pt: int
    video_pt: int
    slots: tuple[Slot, ...]


@dataclass(slots=True)
class Track:
    """One published stream as it reaches the SFU."""

    peer_id: str
    kind: Kind
    ssrc: int
    payload_type: int
    cache: RetransmissionCache
    throttle: KeyframeThrottle
    stats: ReceptionStats
    outbound: list[tuple[str, OutboundStream]] = field(default_factory=list)
    remb: dict[str, tuple[int, float]] = field(default_factory=dict)


@dataclass(slots=True)
class _Peer:
    peer_id: str
    media: PeerMedia
    mapping: dict[int, str] = field(default_factory=dict)  # slot -> publisher
    streams: dict[int, OutboundStream] = field(default_factory=dict)  # out ssrc -> stream
    feeds: dict[int, tuple[str, Kind]] = field(default_factory=dict)  # out ssrc -> source


@dataclass(slots=True)
class Counters:
    """What happened to the packets, for metrics and the heartbeat."""

    rtp_in: int = 0
    rtp_out: int = 0
    rtcp_in: int = 0
    dropped: int = 0
    nack_hits: int = 0
    nack_misses: int = 0
    plis_sent: int = 0
    plis_throttled: int = 0


class RoomForwarder:
    """The forwarding state of one room."""

    def __init__(self, *, remb_bps: int = 1_500_000, cache_size: int = DEFAULT_SIZE,
                 pli_interval: float = DEFAULT_INTERVAL,
                 counters: Counters | None = None) -> None:
        self.remb_bps = remb_bps
        self.cache_size = cache_size
        self.pli_interval = pli_interval
        self.counters = counters if counters is not None else Counters()
        self._peers: dict[str, _Peer] = {}
        self._tracks: dict[str, dict[Kind, Track]] = {}
        self._sources: dict[int, Track] = {}

    # --- participants ------------------------------------------------------------------

    @property
    def peer_ids(self) -> list[str]:
        return list(self._peers)

    def stream_count(self) -> int:
        """Published streams plus forwarded copies."""
        return sum(1 + len(t.outbound) for t in self._sources.values())

    def add_peer(self, peer_id: str, media: PeerMedia) -> None:
        """A participant's (new) PeerConnection: its tracks replace any it had.

        Subscribers of a returning publisher keep their slots: their streams rebase on the
        new SSRCs (`OutboundStream.switch_to`) at the next key frame.
        """
        self._drop_tracks(peer_id)
        for other in self._peers.values():
            for out_ssrc, (pub, kind) in other.feeds.items():
                if pub == peer_id and kind == "video":
                    other.streams[out_ssrc].keyframe_wanted = True
        self._peers[peer_id] = _Peer(peer_id, media)
        tracks: dict[Kind, Track] = {}
        published: tuple[tuple[Kind, int | None, int], ...] = (
            ("audio", media.audio_ssrc, media.audio_pt),
            ("video", media.video_ssrc, media.video_pt))
        for kind, ssrc, pt in published:
            if ssrc is None:
                continue
            track = Track(peer_id, kind, ssrc, pt, RetransmissionCache(self.cache_size),
                          KeyframeThrottle(self.pli_interval), ReceptionStats(CLOCK[kind]))
            tracks[kind] = track
            self._sources[ssrc] = track
        self._tracks[peer_id] = tracks
        self._rebuild()

    def remove_peer(self, peer_id: str) -> None:
        """A participant left: its tracks and its subscriptions go."""
        self._drop_tracks(peer_id)
        self._peers.pop(peer_id, None)
        self._tracks.pop(peer_id, None)
        self._rebuild()

    def _drop_tracks(self, peer_id: str) -> None:
        for track in self._tracks.get(peer_id, {}).values():
            if self._sources.get(track.ssrc) is track:
                del self._sources[track.ssrc]

    def subscribe(self, peer_id: str, mapping: dict[str, int], *, now: float) -> list[Out]:
        """Set a subscriber's whole slot map (publisher → slot); returns the PLIs to send.

        Unknown slots and the subscriber itself are ignored. A publisher newly in a slot
        gets a PLI at once (not throttled), so the first frame comes fast.
        """
        peer = self._peers.get(peer_id)
        if peer is None:
            return []
        nslots = len(peer.media.slots)
        new = {slot: pub for pub, slot in mapping.items()
               if 0 <= slot < nslots and pub != peer_id}
        added = [pub for slot, pub in new.items() if peer.mapping.get(slot) != pub]
        peer.mapping = new
        peer.feeds = {}
        for slot, pub in new.items():
            s = peer.media.slots[slot]
            sent: tuple[tuple[Kind, int, int], ...] = (
                ("audio", s.audio_ssrc, peer.media.audio_pt),
                ("video", s.video_ssrc, peer.media.video_pt))
            for kind, ssrc, pt in sent:
                peer.feeds[ssrc] = (pub, kind)
                stream = peer.streams.get(ssrc)
                if stream is None:
                    stream = OutboundStream(ssrc=ssrc, payload_type=pt,
                                            clock_rate=CLOCK[kind])
                    peer.streams[ssrc] = stream
                if pub in added and kind == "video":
                    stream.keyframe_wanted = True
        self._rebuild()
        out: list[Out] = []
        for pub in added:
            track = self._tracks.get(pub, {}).get("video")
            if track is not None:
                track.throttle.allow(now=now)  # counts; the first frame must not wait
                out.append((pub, rtcp.pli(SFU_SSRC, track.ssrc)))
                self.counters.plis_sent += 1
        return out

    def subscriber_ready(self, peer_id: str, *, now: float) -> list[Out]:
        """The subscriber's transport just came up: it has missed every key frame so far.

        Its video streams wait for the next key frame, and each publisher it shows gets a
        PLI at once (RFC 4585 §6.3.1; not throttled: a new viewer must not wait).
        """
        peer = self._peers.get(peer_id)
        if peer is None:
            return []
        out: list[Out] = []
        for ssrc, (pub, kind) in peer.feeds.items():
            track = self._tracks.get(pub, {}).get(kind)
            if kind != "video" or track is None:
                continue
            peer.streams[ssrc].keyframe_wanted = True
            track.throttle.allow(now=now)
            out.append((pub, rtcp.pli(SFU_SSRC, track.ssrc)))
            self.counters.plis_sent += 1
        return out

    def _rebuild(self) -> None:
        """Recompute each track's list of (subscriber, stream): the hot path's fan-out."""
        for tracks in self._tracks.values():
            for track in tracks.values():
                track.outbound = []
        for peer in self._peers.values():
            for ssrc, (pub, kind) in peer.feeds.items():
                fed = self._tracks.get(pub, {}).get(kind)
                if fed is not None:
                    fed.outbound.append((peer.peer_id, peer.streams[ssrc]))

    # --- the hot path --------------------------------------------------------------------

    def on_rtp(self, peer_id: str, data: bytes, *, now: float) -> list[Out]:
        """One RTP packet from `peer_id`: its rewritten copies for every subscriber."""
        c = self.counters
        c.rtp_in += 1
        h = parse_header(data)
        track = self._sources.get(h.ssrc) if h is not None else None
        if h is None or track is None or track.peer_id != peer_id \
                or h.payload_type != track.payload_type:
            c.dropped += 1
            return []
        track.cache.put(h.sequence, data)
        track.stats.add(h.sequence, h.timestamp, now=now)
        out: list[Out] = []
        key: bool | None = None
        for sub, stream in track.outbound:
            if stream.keyframe_wanted:
                if key is None:
                    key = is_vp8_keyframe(data, h)
                if not key:
                    continue
                stream.keyframe_wanted = False
            seq, ts = stream.translate(h.ssrc, h.sequence, h.timestamp, now=now)
            stream.packets += 1
            stream.octets += h.payload_end - h.payload_offset
            out.append((sub, rewrite(data, h, payload_type=stream.payload_type,
                                     sequence=seq, timestamp=ts, ssrc=stream.ssrc)))
        c.rtp_out += len(out)
        return out

    def on_rtcp(self, peer_id: str, data: bytes, *, now: float) -> list[Out]:
        """One compound RTCP packet from `peer_id`: what it asks of others, answered."""
        self.counters.rtcp_in += 1
        packets = rtcp.parse_rtcp(data)
        peer = self._peers.get(peer_id)
        if packets is None or peer is None:
            self.counters.dropped += 1
            return []
        out: list[Out] = []
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                out += self._sender_report(peer_id, packet, now=now)
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                out += self._nack(peer, packet.media_ssrc, packet.lost[:MAX_NACKS])
            elif isinstance(packet, RtcpPsfbPacket):
                if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                    out += self._keyframe_request(peer, packet, now=now)
                elif packet.fmt == RTCP_PSFB_APP:
                    self._remb(peer, packet.fci, now=now)
        return out

    def _source_track(self, peer: _Peer, out_ssrc: int) -> Track | None:
        feed = peer.feeds.get(out_ssrc)
        return self._tracks.get(feed[0], {}).get(feed[1]) if feed else None

    def _sender_report(self, peer_id: str, sr: RtcpSrPacket, *, now: float) -> list[Out]:
        """RFC 3550 §6.4.1: the same NTP time, the RTP time on each subscriber's clock."""
        track = self._sources.get(sr.ssrc)
        if track is None or track.peer_id != peer_id:
            return []
        info = sr.sender_info
        track.stats.on_sender_report(info.ntp_timestamp, now=now)
        out: list[Out] = []
        for sub, stream in track.outbound:
            if stream.source != sr.ssrc:
                continue  # not rebased on this source yet: its clock is unknown
            out.append((sub, rtcp.sender_report(
                stream.ssrc, ntp_timestamp=info.ntp_timestamp,
                rtp_timestamp=stream.timestamp_out(info.rtp_timestamp),
                packets=stream.packets, octets=stream.octets)))
        return out

    def _nack(self, peer: _Peer, out_ssrc: int, lost: list[int]) -> list[Out]:
        """RFC 4585 §6.2.1: resend what the cache still holds, on the subscriber's numbers."""
        stream = peer.streams.get(out_ssrc)
        track = self._source_track(peer, out_ssrc)
        if stream is None or track is None or stream.source != track.ssrc:
            self.counters.nack_misses += len(lost)
            return []
        out: list[Out] = []
        for seq in lost:
            data = track.cache.get(stream.source_sequence(seq))
            h = parse_header(data) if data is not None else None
            if data is None or h is None:
                self.counters.nack_misses += 1
                continue
            self.counters.nack_hits += 1
            out.append((peer.peer_id, rewrite(
                data, h, payload_type=stream.payload_type, sequence=seq & 0xFFFF,
                timestamp=stream.timestamp_out(h.timestamp), ssrc=stream.ssrc)))
        return out

    def _keyframe_request(self, peer: _Peer, packet: RtcpPsfbPacket, *,
                          now: float) -> list[Out]:
        """PLI or FIR for a slot: a PLI to its publisher, throttled (RFC 4585 §6.3.1)."""
        track = self._source_track(peer, packet.media_ssrc)
        if track is None or track.kind != "video":
            return []
        if not track.throttle.allow(now=now):
            self.counters.plis_throttled += 1
            return []
        self.counters.plis_sent += 1
        return [(track.peer_id, rtcp.pli(SFU_SSRC, track.ssrc))]

    def _remb(self, peer: _Peer, fci: bytes, *, now: float) -> None:
        try:
            bitrate, ssrcs = unpack_remb_fci(fci)
        except (ValueError, IndexError, struct.error):
            return
        for ssrc in ssrcs[:64]:
            track = self._source_track(peer, ssrc)
            if track is not None:
                track.remb[peer.peer_id] = (bitrate, now)

    # --- periodic ------------------------------------------------------------------------

    def _keyframes_still_wanted(self, *, now: float) -> list[Out]:
        """Ask again for the key frames some subscribers still wait for.

        A publisher's encoder may ignore a PLI that comes close after the previous one, and
        a key frame may reach the SFU before the subscriber's transport is up; a stream held
        back for a key frame never makes its receiver ask on its own (it sees no loss).
        """
        waiting: set[int] = set()
        for peer in self._peers.values():
            for ssrc, (pub, kind) in peer.feeds.items():
                track = self._tracks.get(pub, {}).get(kind)
                if track is not None and kind == "video" and peer.streams[ssrc].keyframe_wanted:
                    waiting.add(track.ssrc)
        out: list[Out] = []
        for ssrc in waiting:
            track = self._sources[ssrc]
            if track.throttle.allow(now=now):
                self.counters.plis_sent += 1
                out.append((track.peer_id, rtcp.pli(SFU_SSRC, track.ssrc)))
        return out

    def tick(self, *, now: float) -> list[Out]:
        """Every second or so: each publisher gets an RR about its streams and a REMB cap.

        The REMB is the lowest recent estimate of its subscribers, at most `remb_bps` and
        at least `REMB_MIN`: with one encoding per publisher, the slowest receiver sets the
        pace (no simulcast yet).
        """
        out: list[Out] = []
        out += self._keyframes_still_wanted(now=now)
        for peer_id, tracks in self._tracks.items():
            reports: list[RtcpReceiverInfo] = []
            packet = b""
            for track in tracks.values():
                block = track.stats.report(track.ssrc, now=now)
                if block is not None:
                    reports.append(block)
                if track.kind == "video":
                    for sub, (_, at) in list(track.remb.items()):
                        if now - at > REMB_MAX_AGE or sub not in self._peers:
                            del track.remb[sub]
                    estimates = [b for b, _ in track.remb.values()]
                    bps = max(REMB_MIN, min([self.remb_bps, *estimates]))
                    packet = rtcp.remb(SFU_SSRC, bps, [track.ssrc])
            if reports or packet:
                out.append((peer_id, rtcp.receiver_report(SFU_SSRC, reports) + packet))
        return out
