"""The room forwarding core: fan-out, SSRC changes, NACK, PLI, SR translation, REMB/RR."""

from __future__ import annotations

import random

from aiortc.rtp import RtcpPsfbPacket, RtcpRrPacket, RtcpSrPacket, unpack_remb_fci

from services.sfu.forwarding import rtcp
from services.sfu.forwarding.router import SFU_SSRC, PeerMedia, RoomForwarder, Slot
from services.sfu.forwarding.rtpheader import parse_header
from tests.unit.sfu.packets import OPUS, VP8, VP8_DELTA, VP8_KEY, nack, pli, remb, rtp, sr
import itertools

A_AUDIO, A_VIDEO = 0x1000, 0x1001


def media(audio: int | None, video: int | None, *, base: int, pt_shift: int = 0,
          slots: int = 3) -> PeerMedia:
    return PeerMedia(audio_ssrc=audio, video_ssrc=video, audio_pt=OPUS + pt_shift,
                     video_pt=VP8 + pt_shift,
                     slots=tuple(Slot(base + 2 * i, base + 2 * i + 1) for i in range(slots)))


def room() -> RoomForwarder:
    f = RoomForwarder(remb_bps=1_000_000)
    f.add_peer("a", media(A_AUDIO, A_VIDEO, base=0xA000))
    f.add_peer("b", media(0x2000, 0x2001, base=0xB000, pt_shift=1))
    f.add_peer("c", media(0x3000, 0x3001, base=0xC000))
    return f


def headers(out: list[tuple[str, bytes]]) -> dict[str, tuple[int, int, int, int]]:
    result = {}
    for peer, data in out:
        h = parse_header(data)
        assert h is not None
        result[peer] = (h.ssrc, h.payload_type, h.sequence, h.timestamp)
    return result


def test_subscribe_sends_immediate_pli() -> None:
    f = room()
    out = f.subscribe("b", {"a": 0, "c": 1}, now=0.0)
    targets = {peer: rtcp.parse_rtcp(data) for peer, data in out}
    assert set(targets) == {"a", "c"}
    plis = [p for p in targets["a"] or [] if isinstance(p, RtcpPsfbPacket)]
    assert plis[0].media_ssrc == A_VIDEO and plis[0].fmt == 1
    # a second subscriber to the same publisher within the throttle still gets its PLI
    assert [p for p, _ in f.subscribe("c", {"a": 2}, now=0.1)] == ["a"]


def test_fanout_rewrites_per_subscriber() -> None:
    f = room()
    f.subscribe("b", {"a": 0}, now=0.0)
    f.subscribe("c", {"a": 2}, now=0.0)
    assert f.on_rtp("a", rtp(A_AUDIO, 10, 500, pt=OPUS, payload=b"op"), now=0.0) != []
    out = headers(f.on_rtp("a", rtp(A_AUDIO, 11, 1460, pt=OPUS, payload=b"op"), now=0.02))
    assert out["b"][:2] == (0xB000, OPUS + 1)  # slot 0 of b, b's payload type
    assert out["c"][:2] == (0xC004, OPUS)  # slot 2 of c
    assert "a" not in out


def test_video_waits_for_keyframe_after_subscribe() -> None:
    f = room()
    f.subscribe("b", {"a": 0}, now=0.0)
    assert f.on_rtp("a", rtp(A_VIDEO, 1, 0, payload=VP8_DELTA), now=0.0) == []
    out = f.on_rtp("a", rtp(A_VIDEO, 2, 3000, payload=VP8_KEY), now=0.03)
    assert [p for p, _ in out] == ["b"]
    assert f.on_rtp("a", rtp(A_VIDEO, 3, 3000, payload=VP8_DELTA), now=0.03) != []


def test_rewriting_survives_publisher_ssrc_change() -> None:
    f = room()
    f.subscribe("b", {"a": 0}, now=0.0)
    seqs = []
    for i in range(5):
        for _, data in f.on_rtp("a", rtp(A_VIDEO, 100 + i, 9000 * i, payload=VP8_KEY),
                                now=i * 0.1):
            h = parse_header(data)
            assert h is not None
            seqs.append((h.ssrc, h.sequence, h.timestamp))
    # a reconnects: a new PeerConnection, new SSRCs and random bases
    f.add_peer("a", media(0x7777, 0x7778, base=0xA100))
    assert f.on_rtp("a", rtp(A_VIDEO, 100, 0, payload=VP8_KEY), now=1.0) == []  # old SSRC
    assert f.on_rtp("a", rtp(0x7778, 40000, 555, payload=VP8_DELTA), now=1.0) == []
    for i in range(3):
        for _, data in f.on_rtp("a", rtp(0x7778, 40001 + i, 555 + 3000 * i, payload=VP8_KEY),
                                now=1.0 + i * 0.1):
            h = parse_header(data)
            assert h is not None
            seqs.append((h.ssrc, h.sequence, h.timestamp))
    assert {s for s, _, _ in seqs} == {0xB001}
    numbers = [n for _, n, _ in seqs]
    assert numbers == list(range(numbers[0], numbers[0] + 8))
    stamps = [t for _, _, t in seqs]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert stamps[5] - stamps[4] == round(0.6 * 90000)


def test_nack_hits_and_misses() -> None:
    f = RoomForwarder(cache_size=8)
    f.add_peer("a", media(A_AUDIO, A_VIDEO, base=0xA000))
    f.add_peer("b", media(None, None, base=0xB000))
    f.subscribe("b", {"a": 1}, now=0.0)
    sent = {}
    for i in range(20):
        for _, data in f.on_rtp("a", rtp(A_VIDEO, 500 + i, i * 3000, payload=VP8_KEY),
                                now=i / 30):
            h = parse_header(data)
            assert h is not None
            sent[h.sequence] = data
    first = min(sent)
    want = [first + 2, first + 15, first + 18]  # two still cached, one pushed out
    out = f.on_rtcp("b", nack(0xB, 0xB003, want), now=1.0)
    assert [data for _, data in out] == [sent[first + 15], sent[first + 18]]
    assert {p for p, _ in out} == {"b"}
    assert (f.counters.nack_hits, f.counters.nack_misses) == (2, 1)
    # a NACK for a slot nobody feeds, or from an unknown peer
    assert f.on_rtcp("b", nack(0xB, 0xB005, [1]), now=1.0) == []
    assert f.on_rtcp("zz", nack(0xB, 0xB003, [first]), now=1.0) == []


def test_pli_and_fir_forwarded_and_throttled() -> None:
    f = room()
    f.subscribe("b", {"a": 0}, now=0.0)
    f.subscribe("c", {"a": 0}, now=0.0)
    assert f.on_rtcp("b", pli(0xB, 0xB001), now=0.1) == []  # the subscribe PLI was 0.1 s ago
    out = f.on_rtcp("c", pli(0xC, 0xC001, fir=True), now=0.6)
    assert [p for p, _ in out] == ["a"]
    packets = rtcp.parse_rtcp(out[0][1]) or []
    assert isinstance(packets[0], RtcpRrPacket)  # compound, RR first
    assert isinstance(packets[1], RtcpPsfbPacket) and packets[1].media_ssrc == A_VIDEO
    assert f.on_rtcp("b", pli(0xB, 0xB001), now=0.8) == []
    assert f.counters.plis_throttled == 2
    assert f.on_rtcp("b", pli(0xB, 0xB000), now=5.0) == []  # audio slot: no key frames


def test_sender_report_translated_per_subscriber() -> None:
    f = room()
    f.subscribe("b", {"a": 0}, now=0.0)
    f.subscribe("c", {"a": 1}, now=0.0)
    f.on_rtp("a", rtp(A_AUDIO, 10, 1_000_000, pt=OPUS), now=0.0)
    out = f.on_rtcp("a", sr(A_AUDIO, ntp=0xDEADBEEF_00000000, rtp_ts=1_000_960), now=0.02)
    reports = {}
    for peer, data in out:
        (packet,) = rtcp.parse_rtcp(data) or []
        assert isinstance(packet, RtcpSrPacket)
        reports[peer] = packet
    assert set(reports) == {"b", "c"}
    assert reports["b"].ssrc == 0xB000 and reports["c"].ssrc == 0xC002
    for peer, packet in reports.items():
        stream = f._peers[peer].streams[packet.ssrc]
        assert packet.sender_info.ntp_timestamp == 0xDEADBEEF_00000000
        # same offset as the RTP packets of that stream: audio/video sync is kept
        assert packet.sender_info.rtp_timestamp == stream.timestamp_out(1_000_960)
        assert packet.sender_info.packet_count == 1


def test_tick_sends_rr_and_remb_cap() -> None:
    f = room()
    f.subscribe("b", {"a": 0}, now=0.0)
    for i in range(10):
        if i != 4:  # one lost
            f.on_rtp("a", rtp(A_VIDEO, 100 + i, 3000 * i, payload=VP8_KEY), now=i / 30)
    f.on_rtcp("b", remb(0xB, 300_000, [0xB001]), now=0.5)
    out = dict(f.tick(now=1.0))
    packets = rtcp.parse_rtcp(out["a"]) or []
    rr, fb = packets
    assert isinstance(rr, RtcpRrPacket) and rr.ssrc == SFU_SSRC
    (block,) = rr.reports
    assert block.ssrc == A_VIDEO and block.packets_lost == 1 and block.highest_sequence == 109
    assert isinstance(fb, RtcpPsfbPacket)
    assert unpack_remb_fci(fb.fci) == (300_000, [A_VIDEO])
    # the subscriber's estimate ages out: the cap again
    out = dict(f.tick(now=10.0))
    fb = (rtcp.parse_rtcp(out["a"]) or [])[-1]
    assert isinstance(fb, RtcpPsfbPacket)
    bitrate, _ = unpack_remb_fci(fb.fci)
    assert 990_000 <= bitrate <= 1_000_000  # REMB mantissa rounding


def test_remove_peer_stops_forwarding() -> None:
    f = room()
    f.subscribe("b", {"a": 0}, now=0.0)
    f.remove_peer("b")
    assert f.on_rtp("a", rtp(A_AUDIO, 1, 1, pt=OPUS), now=0.0) == []
    f.remove_peer("a")
    assert f.on_rtp("a", rtp(A_AUDIO, 2, 2, pt=OPUS), now=0.0) == []
    assert f.peer_ids == ["c"]


def test_foreign_or_spoofed_packets_dropped() -> None:
    f = room()
    f.subscribe("b", {"a": 0}, now=0.0)
    assert f.on_rtp("c", rtp(A_AUDIO, 1, 1, pt=OPUS), now=0.0) == []  # c sends a's SSRC
    assert f.on_rtp("a", rtp(A_AUDIO, 1, 1, pt=13), now=0.0) == []  # un-negotiated PT
    assert f.counters.dropped == 2


def test_malformed_input_never_raises() -> None:
    rng = random.Random(7)
    f = room()
    f.subscribe("b", {"a": 0, "c": 1}, now=0.0)
    good = [rtp(A_VIDEO, 1, 1, payload=VP8_KEY), rtp(A_AUDIO, 2, 2, pt=OPUS),
            nack(0xB, 0xB001, [1, 2, 3]), pli(0xB, 0xB001), remb(0xB, 5, [0xB001]),
            sr(A_AUDIO, ntp=1, rtp_ts=2)]
    for i in range(3000):
        base = bytearray(rng.choice(good))
        mode = i % 3
        if mode == 0:
            data = bytes(base[:rng.randrange(len(base))])  # truncated
        elif mode == 1:
            for _ in range(rng.randint(1, 4)):
                base[rng.randrange(len(base))] = rng.randrange(256)
            data = bytes(base)
        else:
            data = bytes([0x80 | rng.randrange(64)]) + rng.randbytes(rng.randrange(80))
        for peer in ("a", "b", "nobody"):
            f.on_rtp(peer, data, now=i / 1000)
            f.on_rtcp(peer, data, now=i / 1000)
    f.tick(now=5.0)
    assert f.counters.dropped > 0


def test_subscriber_ready_waits_for_a_fresh_keyframe() -> None:
    f = room()
    f.subscribe("b", {"a": 0}, now=0.0)
    assert f.on_rtp("a", rtp(A_VIDEO, 1, 0, payload=VP8_KEY), now=0.0) != []
    out = f.subscriber_ready("b", now=0.1)  # b's DTLS came up after that key frame
    assert [p for p, _ in out] == ["a"]
    assert f.on_rtp("a", rtp(A_VIDEO, 2, 3000, payload=VP8_DELTA), now=0.2) == []
    assert f.on_rtp("a", rtp(A_VIDEO, 3, 6000, payload=VP8_KEY), now=0.3) != []
    assert f.subscriber_ready("nobody", now=1.0) == []


def test_tick_asks_again_for_a_keyframe_still_wanted() -> None:
    f = room()
    f.subscribe("b", {"a": 0}, now=0.0)  # PLI at once; no key frame comes
    plis = [p for p, data in f.tick(now=1.0)
            if any(isinstance(x, RtcpPsfbPacket) and x.fmt == 1
                   for x in rtcp.parse_rtcp(data) or [])]
    assert plis == ["a"]
    f.on_rtp("a", rtp(A_VIDEO, 1, 0, payload=VP8_KEY), now=1.1)
    again = [p for p, data in f.tick(now=2.2)
             if any(isinstance(x, RtcpPsfbPacket) and x.fmt == 1
                    for x in rtcp.parse_rtcp(data) or [])]
    assert again == []
