"""One SFU process's participants and rooms: requests, datagrams and ticks, all synchronous.

The node owns the PeerConnections (ICE-lite credentials, DTLS, SRTP sessions, the learned
address) and one `RoomForwarder` per room. The asyncio shell calls `request` for each
signalling request, `datagram` for each UDP datagram and `tick` on a timer; the node calls
`send(data, address)` for what goes out. Nothing here awaits, so the hot path (`datagram`
for SRTP) is one unprotect, the forwarding core, and one protect + `sendto` per copy.

Browsers' addresses live only in memory here; nothing logs or exports them.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import pylibsrtp
from aiortc.rtcdtlstransport import RTCCertificate

from services.common.messages import SfuSessionReply, SfuSessionRequest

from .dtls import DtlsEndpoint, DtlsState, fingerprint_of
from .errors import SessionRefused
from .forwarding.demux import Kind, classify
from .forwarding.router import Counters, RoomForwarder
from .ice import answer_binding, parse_binding
from .sdp import build_answer, parse_offer, strip_candidates

log = logging.getLogger("parley.sfu")

Address = tuple[str, int]
Send = Callable[[bytes, Address], None]
MAX_DATAGRAM: Final[int] = 2048
RTCP_INTERVAL: Final[float] = 1.0
HANDSHAKE_TIMEOUT: Final[float] = 30.0


@dataclass(slots=True)
class Participant:
    """One PeerConnection: a person's page in a room."""

    room_key: str
    peer_id: str
    ufrag: str
    pwd: str
    dtls: DtlsEndpoint
    created: float
    address: Address | None = None
    last_check: float = 0.0


@dataclass(slots=True)
class Room:
    forwarder: RoomForwarder
    participants: dict[str, Participant] = field(default_factory=dict)


@dataclass(slots=True)
class Load:
    """What the heartbeat reports."""

    rooms: int
    peers: int
    streams: int
    packets_per_second: float
    cpu: float


class SfuNode:
    """Every room and PeerConnection of one SFU process."""

    def __init__(self, *, send: Send, candidate: Address, max_peers: int = 200,
                 remb_bps: int = 1_500_000, consent_timeout: float = 10.0,
                 certificate: RTCCertificate | None = None) -> None:
        self.send = send
        self.candidate = candidate
        self.max_peers = max_peers
        self.remb_bps = remb_bps
        self.consent_timeout = consent_timeout
        self.certificate = certificate or RTCCertificate.generateCertificate()
        self.fingerprint = fingerprint_of(self.certificate)
        self.counters = Counters()
        self.draining = False
        self.srtp_failures = 0
        self.rooms: dict[str, Room] = {}
        self._by_ufrag: dict[str, Participant] = {}
        self._by_address: dict[Address, Participant] = {}
        self._last_rtcp = 0.0
        self._last_load: tuple[float, float, int] = (time.monotonic(), time.process_time(), 0)
        self.load = Load(0, 0, 0, 0.0, 0.0)

    # --- signalling requests -------------------------------------------------------------

    def request(self, req: SfuSessionRequest, *, now: float) -> SfuSessionReply:
        """Answer one request from signalling (an offer, a slot map, a leave)."""
        try:
            return self._request(req, now=now)
        except SessionRefused as exc:
            log.info("offer refused: %s", exc.reason)
            return SfuSessionReply(ok=False, error=exc.reason)  # type: ignore[arg-type]

    def _request(self, req: SfuSessionRequest, *, now: float) -> SfuSessionReply:
        room = self.rooms.get(req.room_key)
        if req.leave:
            if room is not None and req.peer_id in room.participants:
                self._remove(room.participants[req.peer_id])
            return SfuSessionReply(ok=True)
        answer_sdp = None
        if req.sdp is not None:
            if room is None and self.draining:
                raise SessionRefused("draining: no new rooms", reason="draining")
            existing = room.participants.get(req.peer_id) if room else None
            if existing is None and self.peer_count() >= self.max_peers:
                raise SessionRefused("at capacity", reason="full")
            offer = parse_offer(strip_candidates(req.sdp))
            if existing is not None:
                self._remove(existing, keep_tracks=True)
            room = self.rooms.get(req.room_key)
            if room is None:
                room = self.rooms[req.room_key] = Room(RoomForwarder(
                    remb_bps=self.remb_bps, counters=self.counters))
            ufrag, pwd = secrets.token_hex(4), secrets.token_hex(16)
            answer = build_answer(offer, ice_ufrag=ufrag, ice_pwd=pwd,
                                  fingerprint=self.fingerprint, host=self.candidate[0],
                                  port=self.candidate[1])
            p = Participant(req.room_key, req.peer_id, ufrag, pwd,
                            DtlsEndpoint(self.certificate,
                                         remote_fingerprint=offer.fingerprint),
                            created=now, last_check=now)
            room.participants[req.peer_id] = p
            self._by_ufrag[ufrag] = p
            room.forwarder.add_peer(req.peer_id, answer.media)
            answer_sdp = answer.sdp
        if room is None or req.peer_id not in room.participants:
            return SfuSessionReply(ok=False, error="no-session")
        if req.subscribe is not None:
            self._send_rtcp(room, room.forwarder.subscribe(req.peer_id, req.subscribe, now=now))
        return SfuSessionReply(ok=True, sdp=answer_sdp)

    def peer_count(self) -> int:
        return sum(len(r.participants) for r in self.rooms.values())

    def _remove(self, p: Participant, *, keep_tracks: bool = False) -> None:
        """Forget a PeerConnection (a close_notify goes out if DTLS was up)."""
        if p.address is not None:
            for record in p.dtls.close():
                self.send(record, p.address)
            if self._by_address.get(p.address) is p:
                del self._by_address[p.address]
        if self._by_ufrag.get(p.ufrag) is p:
            del self._by_ufrag[p.ufrag]
        room = self.rooms.get(p.room_key)
        if room is None or room.participants.get(p.peer_id) is not p:
            return
        del room.participants[p.peer_id]
        if not keep_tracks:
            room.forwarder.remove_peer(p.peer_id)
            if not room.participants:
                del self.rooms[p.room_key]

    # --- datagrams -----------------------------------------------------------------------

    def datagram(self, data: bytes, address: Address, *, now: float) -> None:
        """One UDP datagram from `address` (RFC 7983 demux, then its protocol)."""
        if len(data) > MAX_DATAGRAM:
            self.counters.dropped += 1
            return
        kind = classify(data)
        if kind is Kind.RTP or kind is Kind.RTCP:
            p = self._by_address.get(address)
            rx = p.dtls.rx if p is not None else None
            if p is None or rx is None:
                self.counters.dropped += 1
                return
            room = self.rooms[p.room_key]
            try:
                if kind is Kind.RTP:
                    out = room.forwarder.on_rtp(p.peer_id, rx.unprotect(data), now=now)
                    self._send_rtp(room, out)
                else:
                    out = room.forwarder.on_rtcp(p.peer_id, rx.unprotect_rtcp(data), now=now)
                    self._send_rtcp(room, out)
            except pylibsrtp.Error:
                self.srtp_failures += 1
            return
        if kind is Kind.STUN:
            self._stun(data, address, now=now)
        elif kind is Kind.DTLS:
            self._dtls(data, address)
        else:
            self.counters.dropped += 1

    def _send_rtp(self, room: Room, out: list[tuple[str, bytes]]) -> None:
        participants = room.participants
        for peer_id, packet in out:
            d = participants.get(peer_id)
            if d is not None and d.address is not None and d.dtls.tx is not None:
                self.send(d.dtls.tx.protect(packet), d.address)

    def _send_rtcp(self, room: Room, out: list[tuple[str, bytes]]) -> None:
        for peer_id, packet in out:
            d = room.participants.get(peer_id)
            if d is not None and d.address is not None and d.dtls.tx is not None:
                try:
                    self.send(d.dtls.tx.protect_rtcp(packet), d.address)
                except pylibsrtp.Error:
                    self.srtp_failures += 1

    def _stun(self, data: bytes, address: Address, *, now: float) -> None:
        """RFC 8445 §7.3 (lite): answer a check; a nominated (or first) pair sets the path."""
        req = parse_binding(data)
        p = self._by_ufrag.get(req.local_ufrag) if req is not None else None
        if req is None or p is None:
            self.counters.dropped += 1
            return
        response = answer_binding(req, address, local_pwd=p.pwd)
        if response is None:
            self.counters.dropped += 1
            return
        self.send(response, address)
        p.last_check = now
        if p.address != address and (req.use_candidate or p.address is None):
            if p.address is not None and self._by_address.get(p.address) is p:
                del self._by_address[p.address]
            p.address = address
            self._by_address[address] = p
            log.debug("ice path selected")

    def _dtls(self, data: bytes, address: Address) -> None:
        p = self._by_address.get(address)
        if p is None:
            self.counters.dropped += 1
            return
        before = p.dtls.state
        for record in p.dtls.receive(data):
            self.send(record, address)
        if p.dtls.state is not before:
            log.debug("dtls %s", p.dtls.state.value)
            room = self.rooms.get(p.room_key)
            if p.dtls.state is DtlsState.CONNECTED and room is not None:
                self._send_rtcp(room, room.forwarder.subscriber_ready(
                    p.peer_id, now=time.monotonic()))
        if p.dtls.state in (DtlsState.CLOSED, DtlsState.FAILED):
            log.info("peer connection ended (%s)", p.dtls.state.value)
            self._remove(p)

    # --- timers --------------------------------------------------------------------------

    def tick(self, *, now: float) -> None:
        """Retransmit DTLS flights, close what lost consent, send RR/REMB once a second."""
        for room in list(self.rooms.values()):
            for p in list(room.participants.values()):
                if p.address is not None:
                    for record in p.dtls.on_timeout():
                        self.send(record, p.address)
                idle = now - p.last_check
                stuck = p.dtls.state is not DtlsState.CONNECTED and \
                    now - p.created > HANDSHAKE_TIMEOUT
                if idle > self.consent_timeout or stuck:
                    log.info("peer connection closed: %s", "no handshake" if stuck else
                             "consent expired")
                    self._remove(p)
        if now - self._last_rtcp >= RTCP_INTERVAL:
            self._last_rtcp = now
            for room in self.rooms.values():
                self._send_rtcp(room, room.forwarder.tick(now=now))
            self._measure()

    def _measure(self) -> None:
        wall, cpu, packets = time.monotonic(), time.process_time(), self.counters.rtp_out
        last_wall, last_cpu, last_packets = self._last_load
        span = max(wall - last_wall, 1e-3)
        self._last_load = (wall, cpu, packets)
        self.load = Load(
            rooms=len(self.rooms), peers=self.peer_count(),
            streams=sum(r.forwarder.stream_count() for r in self.rooms.values()),
            packets_per_second=(packets - last_packets) / span,
            cpu=max(0.0, (cpu - last_cpu) / span))
