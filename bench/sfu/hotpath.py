"""`python bench/sfu/hotpath.py [N]`: CPU per forwarded packet of the pure-Python hot path (SRTP unprotect, forwarding core,
SRTP protect per copy), in process, no sockets: a room of N, one publisher's video."""
import sys
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from aiortc.rtcdtlstransport import RTCCertificate
from services.sfu.dtls import DtlsEndpoint, fingerprint_of
from services.sfu.forwarding.router import PeerMedia, RoomForwarder, Slot
from tests.unit.sfu.packets import rtp, VP8_KEY

def pair():
    sc, cc = RTCCertificate.generateCertificate(), RTCCertificate.generateCertificate()
    s = DtlsEndpoint(sc, remote_fingerprint=tuple(fingerprint_of(cc).split(" ")), role="server")
    c = DtlsEndpoint(cc, remote_fingerprint=tuple(fingerprint_of(sc).split(" ")), role="client")
    flight, sender = c.start(), c
    for _ in range(10):
        recv = s if sender is c else c
        out = [r for rec in flight for r in recv.receive(rec)]
        flight, sender = out, recv
        if not flight: break
    return s, c

N = int(sys.argv[1]) if len(sys.argv) > 1 else 6
f = RoomForwarder()
ends = {}
for i in range(N):
    ends[f"p{i}"] = pair()
    f.add_peer(f"p{i}", PeerMedia(audio_ssrc=1000 + i, video_ssrc=2000 + i, audio_pt=111, video_pt=96,
                                   slots=tuple(Slot(10000 + 100 * i + 2 * k, 10001 + 100 * i + 2 * k) for k in range(N - 1))))
for i in range(N):
    others = [f"p{j}" for j in range(N) if j != i]
    f.subscribe(f"p{i}", {o: k for k, o in enumerate(others)}, now=0.0)
pub_server, pub_client = ends["p0"]
packets = [pub_client.tx.protect(rtp(2000, s, s * 3000, payload=VP8_KEY + bytes(1000))) for s in range(20000)]
t0 = time.process_time(); out_count = 0
for k, data in enumerate(packets):
    plain = pub_server.rx.unprotect(data)
    for dest, pkt in f.on_rtp("p0", plain, now=k / 1000):
        ends[dest][0].tx.protect(pkt); out_count += 1
cpu = time.process_time() - t0
print(f"room of {N}: {out_count} packets forwarded, {cpu / out_count * 1e6:.1f} us CPU per forwarded packet (no sendto)")
