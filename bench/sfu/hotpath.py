"""CPU per forwarded packet of the SFU's pure-Python hot path, in process, no sockets.

`python -m bench.sfu.hotpath [N]`: a room of N (default 6), one publisher's VP8 video;
each packet is SRTP-unprotected, forwarded by the core (`RoomForwarder.on_rtp`) and
SRTP-protected once per subscriber. No `sendto`: the socket cost is `bench.sfu`'s figure.
"""

from __future__ import annotations

import sys
import time

from aiortc.rtcdtlstransport import RTCCertificate

from services.sfu.dtls import DtlsEndpoint, fingerprint_of
from services.sfu.forwarding.router import PeerMedia, RoomForwarder, Slot
from tests.unit.sfu.packets import VP8_KEY, rtp

PACKETS = 20_000


def pair() -> tuple[DtlsEndpoint, DtlsEndpoint]:
    """A server and a client endpoint with DTLS done in memory (SRTP sessions keyed)."""
    sc, cc = RTCCertificate.generateCertificate(), RTCCertificate.generateCertificate()
    s = DtlsEndpoint(sc, remote_fingerprint=tuple(fingerprint_of(cc).split(" ")), role="server")
    c = DtlsEndpoint(cc, remote_fingerprint=tuple(fingerprint_of(sc).split(" ")), role="client")
    flight, sender = c.start(), c
    for _ in range(10):
        recv = s if sender is c else c
        flight = [r for rec in flight for r in recv.receive(rec)]
        sender = recv
        if not flight:
            break
    return s, c


def main(n: int) -> None:
    forwarder = RoomForwarder()
    ends = {}
    for i in range(n):
        ends[f"p{i}"] = pair()
        slots = tuple(Slot(10000 + 100 * i + 2 * k, 10001 + 100 * i + 2 * k)
                      for k in range(n - 1))
        forwarder.add_peer(f"p{i}", PeerMedia(audio_ssrc=1000 + i, video_ssrc=2000 + i,
                                              audio_pt=111, video_pt=96, slots=slots))
    for i in range(n):
        others = [f"p{j}" for j in range(n) if j != i]
        forwarder.subscribe(f"p{i}", {o: k for k, o in enumerate(others)}, now=0.0)
    pub_server, pub_client = ends["p0"]
    packets = [pub_client.tx.protect(rtp(2000, s, s * 3000, payload=VP8_KEY + bytes(1000)))
               for s in range(PACKETS)]
    t0 = time.process_time()
    forwarded = 0
    for k, data in enumerate(packets):
        plain = pub_server.rx.unprotect(data)
        for dest, pkt in forwarder.on_rtp("p0", plain, now=k / 1000):
            ends[dest][0].tx.protect(pkt)
            forwarded += 1
    cpu = time.process_time() - t0
    print(f"room of {n}: {forwarded} packets forwarded, "
          f"{cpu / forwarded * 1e6:.1f} us CPU per forwarded packet (no sendto)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
