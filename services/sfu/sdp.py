"""Offer in, answer out: the SDP the SFU understands and writes (RFC 8866, RFC 8829 JSEP).

Sans-I/O. The SFU accepts only what docs/sfu.md promises: one BUNDLE group over every
m-line (RFC 8843), rtcp-mux (RFC 5761), Opus and VP8. The page's `sendonly`/`sendrecv`
m-lines are what it publishes; its `recvonly` m-lines, paired audio with video in order,
are its receive slots, answered `sendonly` with an SSRC of the SFU's for each.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Final

from .errors import BadOffer
from .forwarding.router import PeerMedia, Slot

MAX_MLINES: Final[int] = 128
MAX_SLOTS: Final[int] = 50
_FINGERPRINT: Final[re.Pattern[str]] = re.compile(
    r"^(sha-256|sha-384|sha-512) ([0-9A-Fa-f:]{1,200})$")
_TOKEN: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9+/=_-]{1,256}$")


@dataclass(slots=True)
class MediaSection:
    """One m-line of an offer, reduced to what the SFU reads."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    mid: str | None = None
    direction: str = "sendrecv"
    rtpmap: dict[int, str] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    ssrcs: list[int] = field(default_factory=list)
    fid: list[int] = field(default_factory=list)
    rtcp_mux: bool = False
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    fingerprint: tuple[str, str] | None = None
    setup: str | None = None


@dataclass(slots=True)
class Offer:
    """What an offer says about the transport and the media."""

    ice_ufrag: str
    ice_pwd: str
    fingerprint: tuple[str, str]
    sections: list[MediaSection]
    bundle: list[str]


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise BadOffer("not a number where one is expected") from exc


def parse_offer(text: str) -> Offer:
    """Parse an offer; `BadOffer` says which rule it breaks (never echoing its content)."""
    session: dict[str, str] = {}
    session_fp: tuple[str, str] | None = None
    sections: list[MediaSection] = []
    bundle: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            parts = value.split()
            if len(parts) < 4:
                raise BadOffer("malformed m-line")
            if len(sections) >= MAX_MLINES:
                raise BadOffer("too many m-lines")
            sections.append(MediaSection(parts[0], _int(parts[1]), parts[2], parts[3:]))
            continue
        if kind != "a":
            continue
        name, _, arg = value.partition(":")
        target = sections[-1] if sections else None
        if name == "group" and arg.startswith("BUNDLE"):
            bundle = arg.split()[1:]
        elif name in ("ice-ufrag", "ice-pwd"):
            if not _TOKEN.match(arg):
                raise BadOffer(f"malformed {name}")
            if target is None:
                session[name] = arg
            elif name == "ice-ufrag":
                target.ice_ufrag = arg
            else:
                target.ice_pwd = arg
        elif name == "fingerprint":
            match = _FINGERPRINT.match(arg.strip())
            if not match:
                raise BadOffer("malformed fingerprint")
            fp = (match.group(1).lower(), match.group(2).upper())
            if target is None:
                session_fp = fp
            else:
                target.fingerprint = fp
        elif target is None:
            continue
        elif name == "mid":
            target.mid = arg
        elif name in ("sendrecv", "sendonly", "recvonly", "inactive"):
            target.direction = name
        elif name == "rtcp-mux":
            target.rtcp_mux = True
        elif name == "setup":
            target.setup = arg
        elif name == "rtpmap":
            pt, _, codec = arg.partition(" ")
            target.rtpmap[_int(pt)] = codec
        elif name == "fmtp":
            pt, _, params = arg.partition(" ")
            target.fmtp[_int(pt)] = params
        elif name == "ssrc":
            ssrc = _int(arg.split()[0]) if arg.split() else -1
            if not 0 < ssrc < 1 << 32:
                raise BadOffer("malformed ssrc")
            if ssrc not in target.ssrcs:
                target.ssrcs.append(ssrc)
        elif name == "ssrc-group" and arg.startswith("FID"):
            target.fid = [_int(s) for s in arg.split()[1:3]]
    if not sections:
        raise BadOffer("no media")
    first = sections[0]
    ufrag = first.ice_ufrag or session.get("ice-ufrag")
    pwd = first.ice_pwd or session.get("ice-pwd")
    fingerprint = first.fingerprint or session_fp
    if not ufrag or not pwd or fingerprint is None:
        raise BadOffer("the offer lacks ICE credentials or a DTLS fingerprint")
    live = [s for s in sections if s.port != 0]
    if any(s.mid is None or s.mid not in bundle for s in live):
        raise BadOffer("every m-line must be in one BUNDLE group")
    if any(not s.rtcp_mux for s in live):
        raise BadOffer("rtcp-mux is required")
    if any(s.proto != "UDP/TLS/RTP/SAVPF" for s in live if s.kind in ("audio", "video")):
        raise BadOffer("only UDP/TLS/RTP/SAVPF media")
    return Offer(ufrag, pwd, fingerprint, sections, bundle)


def _codec_pt(section: MediaSection) -> int | None:
    want = "opus/48000" if section.kind == "audio" else "vp8/90000"
    for pt, codec in section.rtpmap.items():
        if codec.lower().startswith(want) and str(pt) in section.formats:
            return pt
    return None


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer's text and the media it settles."""

    sdp: str
    media: PeerMedia


def _new_ssrc(taken: set[int]) -> int:
    while True:
        ssrc = secrets.randbits(32)
        if ssrc and ssrc not in taken:
            taken.add(ssrc)
            return ssrc


def build_answer(offer: Offer, *, ice_ufrag: str, ice_pwd: str, fingerprint: str,
                 host: str, port: int, max_slots: int = MAX_SLOTS) -> Answer:
    """The SFU's answer: ICE-lite, DTLS passive, one host candidate, slots `sendonly`.

    Args:
        fingerprint: the SFU certificate's "sha-256 AA:BB:..." value.
        host, port: the address in the candidate (the public one).
    """
    audio_pt = video_pt = None
    publish: dict[str, int | None] = {"audio": None, "video": None}
    slots: dict[str, list[int]] = {"audio": [], "video": []}  # section indexes
    for i, s in enumerate(offer.sections):
        if s.port == 0 or s.kind not in ("audio", "video"):
            continue
        pt = _codec_pt(s)
        if pt is None:
            continue
        if s.kind == "audio":
            audio_pt = audio_pt if audio_pt is not None else pt
        else:
            video_pt = video_pt if video_pt is not None else pt
        if s.direction in ("sendonly", "sendrecv") and publish[s.kind] is None and s.ssrcs:
            publish[s.kind] = s.fid[0] if s.fid else s.ssrcs[0]
        elif s.direction == "recvonly":
            slots[s.kind].append(i)
    nslots = min(len(slots["audio"]), len(slots["video"]), max_slots)
    taken = {x for x in publish.values() if x is not None}
    slot_ssrc: dict[int, int] = {}
    slot_of: dict[int, tuple[int, str]] = {}
    out_slots: list[Slot] = []
    for n in range(nslots):
        a, v = slots["audio"][n], slots["video"][n]
        slot_ssrc[a], slot_ssrc[v] = _new_ssrc(taken), _new_ssrc(taken)
        slot_of[a], slot_of[v] = (n, "audio"), (n, "video")
        out_slots.append(Slot(slot_ssrc[a], slot_ssrc[v]))
    media = PeerMedia(audio_ssrc=publish["audio"], video_ssrc=publish["video"],
                      audio_pt=audio_pt if audio_pt is not None else 111,
                      video_pt=video_pt if video_pt is not None else 96,
                      slots=tuple(out_slots))
    ip_version = "IP6" if ":" in host else "IP4"
    lines = ["v=0", f"o=- {secrets.randbits(62)} 2 IN IP4 0.0.0.0", "s=parley-sfu", "t=0 0",
             "a=ice-lite"]
    mids = [s.mid for s in offer.sections if s.port != 0 and s.mid is not None]
    lines.append("a=group:BUNDLE " + " ".join(mids))
    lines.append("a=msid-semantic: WMS *")
    for i, s in enumerate(offer.sections):
        pt = _codec_pt(s) if s.kind in ("audio", "video") else None
        if s.port == 0 or pt is None or s.mid is None:
            lines += [f"m={s.kind} 0 {s.proto} {s.formats[0] if s.formats else '0'}",
                      "c=IN IP4 0.0.0.0"]
            if s.mid is not None:
                lines.append(f"a=mid:{s.mid}")
            lines.append("a=inactive")
            continue
        lines += [f"m={s.kind} 9 UDP/TLS/RTP/SAVPF {pt}", "c=IN IP4 0.0.0.0",
                  f"a=ice-ufrag:{ice_ufrag}", f"a=ice-pwd:{ice_pwd}",
                  f"a=fingerprint:{fingerprint}", "a=setup:passive", f"a=mid:{s.mid}"]
        if i in slot_of:
            n, kind = slot_of[i]
            ssrc = slot_ssrc[i]
            lines += ["a=sendonly", f"a=msid:slot-{n} slot-{n}-{kind}"]
        elif s.direction in ("sendonly", "sendrecv"):
            lines.append("a=recvonly")
        else:
            lines.append("a=inactive")
            ssrc = 0
        lines.append("a=rtcp-mux")
        if s.kind == "audio":
            lines += [f"a=rtpmap:{pt} opus/48000/2", f"a=fmtp:{pt} minptime=10;useinbandfec=1"]
        else:
            lines += [f"a=rtpmap:{pt} VP8/90000", f"a=rtcp-fb:{pt} goog-remb",
                      f"a=rtcp-fb:{pt} ccm fir", f"a=rtcp-fb:{pt} nack",
                      f"a=rtcp-fb:{pt} nack pli"]
        if i in slot_of:
            n, kind = slot_of[i]
            lines += [f"a=ssrc:{ssrc} cname:parley-slot-{n}",
                      f"a=ssrc:{ssrc} msid:slot-{n} slot-{n}-{kind}"]
        lines += [f"a=candidate:1 1 udp 2130706431 {host} {port} typ host",
                  "a=end-of-candidates"]
    del ip_version
    return Answer("\r\n".join(lines) + "\r\n", media)


def strip_candidates(sdp: str) -> str:
    """The SDP without its `a=candidate` lines (a browser's addresses stay off the bus)."""
    return "".join(line for line in sdp.splitlines(keepends=True)
                   if not line.startswith("a=candidate:"))
