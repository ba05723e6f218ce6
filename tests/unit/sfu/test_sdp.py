"""Offer parsing and answer writing (a captured Chrome-shaped offer in tests/data/sfu)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.sfu.errors import BadOffer
from services.sfu.sdp import build_answer, parse_offer, strip_candidates

OFFER = (Path(__file__).parents[2] / "data" / "sfu" / "chrome-offer.sdp").read_text()


def answer() -> tuple[str, object]:
    a = build_answer(parse_offer(OFFER), ice_ufrag="sfuU", ice_pwd="sfupasswordsfupassword",
                     fingerprint="sha-256 AA:BB", host="198.51.100.7", port=7882)
    return a.sdp, a.media


def test_parse_offer_reads_transport_and_media() -> None:
    offer = parse_offer(OFFER)
    assert offer.ice_ufrag == "Ab3d"
    assert offer.fingerprint[0] == "sha-256"
    assert offer.bundle == ["0", "1", "2", "3"]
    assert [s.direction for s in offer.sections] == ["sendonly", "sendonly", "recvonly",
                                                     "recvonly"]
    assert offer.sections[1].fid == [2222, 3333]


def test_build_answer_publish_and_slots() -> None:
    sdp, media = answer()
    assert media.audio_ssrc == 1111 and media.video_ssrc == 2222  # FID primary, not RTX
    assert (media.audio_pt, media.video_pt) == (111, 96)
    assert len(media.slots) == 1
    slot = media.slots[0]
    lines = sdp.split("\r\n")
    assert "a=ice-lite" in lines and "a=group:BUNDLE 0 1 2 3" in lines
    assert lines.count("a=setup:passive") == 4
    assert lines.count("a=recvonly") == 2 and lines.count("a=sendonly") == 2
    assert f"a=ssrc:{slot.audio_ssrc} msid:slot-0 slot-0-audio" in lines
    assert f"a=ssrc:{slot.video_ssrc} msid:slot-0 slot-0-video" in lines
    assert "a=candidate:1 1 udp 2130706431 198.51.100.7 7882 typ host" in lines
    assert "m=video 9 UDP/TLS/RTP/SAVPF 96" in lines  # no RTX
    assert "192.0.2.10" not in sdp


def test_strip_candidates() -> None:
    stripped = strip_candidates(OFFER)
    assert "192.0.2.10" not in stripped
    assert parse_offer(stripped).ice_ufrag == "Ab3d"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.replace("a=group:BUNDLE 0 1 2 3", "a=group:BUNDLE 0 1"),
     "every m-line must be in one BUNDLE group"),
    (lambda s: s.replace("a=rtcp-mux\n", "", 1), "rtcp-mux is required"),
    (lambda s: s.replace("a=ice-pwd:abcdefghijklmnopqrstuvwx\n", ""),
     "the offer lacks ICE credentials or a DTLS fingerprint"),
    (lambda s: s.replace("a=ssrc:1111 cname:x", "a=ssrc:nope cname:x"),
     "not a number where one is expected"),
    (lambda s: "v=0\n", "no media"),
    (lambda s: s.replace("a=fingerprint:sha-256 0A", "a=fingerprint:md5 0A"),
     "malformed fingerprint"),
])
def test_parse_offer_refusals(edit: object, message: str) -> None:
    with pytest.raises(BadOffer, match=message):
        parse_offer(edit(OFFER))  # type: ignore[operator]
