"""The SFU under real RTP: server CPU per forwarded packet, and the largest room without freezes.

`python -m bench.sfu [--sizes 2,4,6] [--seconds 8] [--warmup 6]`

One `parley sfu` process on loopback (its own NATS), and aiortc peers as load generators in
this process: each publishes a synthetic camera (320×240, 15 fps, VP8 of a moving picture,
so the encoder sends real key and delta frames) and a microphone (Opus, 50 packets/s), and
subscribes to every other person of the room through the SFU's receive slots, decoding
their video. For each room size, after a warm-up:

- **forwarded packets/s** (`parley_sfu_packets_forwarded_total`) and the SFU process's CPU
  (utime+stime from /proc/<pid>/stat, `bench.relay.run.cpu_seconds`) → **µs of CPU per
  forwarded packet** (all of it, and above the idle process's, measured first), the issue's
  figure (target ≤ 30 µs; LiveKit, in Go, publishes about
  40 000–75 000 forwarded packets/s per core, i.e. 13–25 µs per packet);
- **freezes** on the receivers: a video stream freezes when the gap between two decoded
  frames exceeds max(3 × its mean gap, mean + 150 ms) (the webrtc-stats freeze rule), or
  when it decodes nothing in the window;
- the load generator's own CPU: when it is near the machine's cores, the freezes are the
  generator's (aiortc decodes every stream in Python's process), not the SFU's.

The largest room is the largest size with no freeze. Numbers move with whatever else runs
on the machine; the CPU per packet is the steadier figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import nats
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from aiortc.rtcconfiguration import RTCBundlePolicy

from bench.relay.run import cpu_seconds
from services.common import subjects
from services.common.infra import NatsServer, free_port
from services.common.messages import SfuSessionReply, SfuSessionRequest

ROOT = Path(__file__).resolve().parents[2]
SFU_ID = "bench-sfu"
WIDTH, HEIGHT, FPS = 320, 240, 15
FORWARDED = re.compile(r"^parley_sfu_packets_forwarded_total (\S+)$", re.M)


class MovingPicture(VideoStreamTrack):
    """A camera at WIDTH×HEIGHT and FPS: a picture that moves a little every frame."""

    def __init__(self) -> None:
        super().__init__()
        row = bytes((x * 255 // WIDTH) for x in range(WIDTH))
        luma = b"".join(row[(y // 4) % WIDTH:] + row[:(y // 4) % WIDTH] for y in range(HEIGHT))
        self._frames = []
        for i in range(FPS * 2):  # two seconds of motion, then again
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            shift = (4 * i) % len(luma)
            frame.planes[0].update(luma[shift:] + luma[:shift])
            for plane, value in ((frame.planes[1], 96 + 2 * i), (frame.planes[2], 160 - i)):
                plane.update(bytes([value & 255]) * (plane.line_size * plane.height))
            self._frames.append(frame)
        self._start: float | None = None
        self._n = 0

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._n += 1
            wait = self._start + self._n / FPS - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = self._frames[self._n % len(self._frames)]
        frame.pts = self._n * 90000 // FPS
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


@dataclass
class Peer:
    """One participant: its PeerConnection and the arrival times of each subscribed video."""

    peer_id: str
    pc: RTCPeerConnection
    video: list[Any]
    audio: list[Any]
    arrivals: dict[str, list[float]] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def _ask(nc: nats.NATS, req: SfuSessionRequest) -> SfuSessionReply:
    msg = await nc.request(subjects.sfu_session(SFU_ID), req.model_dump_json().encode(),
                           timeout=30)
    return SfuSessionReply.model_validate_json(msg.data)


async def _join(nc: nats.NATS, room: str, peer_id: str, slots: int) -> Peer:
    pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    pc.addTransceiver(MovingPicture(), direction="sendonly")
    slot_transceivers = [(pc.addTransceiver("audio", direction="recvonly"),
                          pc.addTransceiver("video", direction="recvonly"))
                         for _ in range(slots)]
    await pc.setLocalDescription(await pc.createOffer())
    reply = await _ask(nc, SfuSessionRequest(room_key=room, peer_id=peer_id,
                                             sdp=pc.localDescription.sdp))
    if not reply.ok or not reply.sdp:
        raise RuntimeError(f"the SFU refused {peer_id}: {reply.error}")
    await pc.setRemoteDescription(RTCSessionDescription(reply.sdp, "answer"))
    # the receivers' tracks exist once the answer is applied
    return Peer(peer_id, pc, video=[v.receiver.track for _, v in slot_transceivers],
                audio=[a.receiver.track for a, _ in slot_transceivers])


async def _drain_audio(track: Any) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


async def _count_video(track: Any, times: list[float]) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()
            times.append(time.monotonic())


def _freezes(times: list[float], start: float, end: float) -> int:
    """Freezes of one video stream within [start, end] (webrtc-stats rule); a stream that
    decoded nothing in the window counts as one."""
    inside = [t for t in times if start <= t <= end]
    if len(inside) < 2:
        return 1
    gaps = [b - a for a, b in zip([start, *inside], [*inside, end], strict=True)]
    mean = (inside[-1] - inside[0]) / (len(inside) - 1)
    return sum(1 for g in gaps if g > max(3 * mean, mean + 0.150))


def _forwarded(http: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as r:
        found = FORWARDED.search(r.read().decode())
    return float(found.group(1)) if found else 0.0


@dataclass
class Step:
    """One room size measured."""

    people: int
    forwarded_pps: float
    sfu_cpu: float  # cores
    generator_cpu: float  # cores
    fps: float  # mean decoded video frames/s per subscribed stream
    freezes: int
    streams: int

    @property
    def us_per_packet(self) -> float:
        return self.sfu_cpu * 1e6 / max(self.forwarded_pps, 1e-9)

    def marginal_us(self, idle_cpu: float) -> float:
        """CPU per forwarded packet above the idle process's (heartbeats, timers)."""
        return max(self.sfu_cpu - idle_cpu, 0.0) * 1e6 / max(self.forwarded_pps, 1e-9)


async def measure(nc: nats.NATS, sfu: subprocess.Popen[bytes], http: int, people: int, *,
                  warmup: float, seconds: float) -> Step:
    room = f"bench{people:02d}{os.urandom(6).hex()}"[:22]
    peers = await asyncio.gather(*(_join(nc, room, f"p{i}", people - 1)
                                   for i in range(people)))
    try:
        for me in peers:
            others = [p.peer_id for p in peers if p is not me]
            reply = await _ask(nc, SfuSessionRequest(
                room_key=room, peer_id=me.peer_id,
                subscribe={pid: slot for slot, pid in enumerate(others)}))
            if not reply.ok:
                raise RuntimeError(f"subscribe refused: {reply.error}")
            for slot, pid in enumerate(others):
                me.arrivals[pid] = []
                me.tasks.append(asyncio.create_task(
                    _count_video(me.video[slot], me.arrivals[pid])))
                me.tasks.append(asyncio.create_task(_drain_audio(me.audio[slot])))
        await asyncio.sleep(warmup)
        start, fwd0 = time.monotonic(), _forwarded(http)
        cpu0, gen0 = cpu_seconds(sfu.pid), cpu_seconds(os.getpid())
        await asyncio.sleep(seconds)
        end, fwd1 = time.monotonic(), _forwarded(http)
        cpu1, gen1 = cpu_seconds(sfu.pid), cpu_seconds(os.getpid())
        span = end - start
        streams = [(t, start, end) for p in peers for t in p.arrivals.values()]
        frames = sum(len([x for x in t if start <= x <= end]) for t, _, _ in streams)
        return Step(people=people, forwarded_pps=(fwd1 - fwd0) / span,
                    sfu_cpu=(cpu1 - cpu0) / span, generator_cpu=(gen1 - gen0) / span,
                    fps=frames / span / max(len(streams), 1),
                    freezes=sum(_freezes(t, s, e) for t, s, e in streams),
                    streams=len(streams))
    finally:
        for p in peers:
            for task in p.tasks:
                task.cancel()
        await asyncio.gather(*(p.pc.close() for p in peers), return_exceptions=True)


def start_sfu(nats_url: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    http = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1", PARLEY_SFU_NATS_URL=nats_url,
               PARLEY_SFU_ID=SFU_ID, PARLEY_SFU_LOG_LEVEL="warning")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services", "sfu", "--listen",
             f"127.0.0.1:{free_port(udp_too=True)}", "--http-host", "127.0.0.1",
             "--http-port", str(http)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"parley sfu exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(
                f"http://127.0.0.1:{http}/readyz", timeout=2):
            return proc, http
        time.sleep(0.2)
    raise RuntimeError("parley sfu did not become ready")


async def run(sizes: list[int], *, warmup: float, seconds: float) -> list[Step]:
    srv = NatsServer().start()
    log = Path(tempfile.mkstemp(prefix="bench-sfu-", suffix=".log")[1])
    sfu, http = start_sfu(srv.url, log)
    nc = await nats.connect(srv.url)
    steps: list[Step] = []
    try:
        before = cpu_seconds(sfu.pid)
        await asyncio.sleep(3)
        idle = (cpu_seconds(sfu.pid) - before) / 3
        print(f"idle SFU (heartbeats, timers): {idle * 100:.1f}% of a core; machine load "
              f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        for people in sizes:
            step = await measure(nc, sfu, http, people, warmup=warmup, seconds=seconds)
            steps.append(step)
            print(f"{step.people:>3} people: {step.forwarded_pps:8.0f} forwarded pkt/s, "
                  f"SFU {step.sfu_cpu * 100:5.1f}% of a core = {step.us_per_packet:6.1f} µs/pkt; "
                  f"{step.streams} video streams at {step.fps:4.1f} fps, "
                  f"{step.freezes} freezes; generator {step.generator_cpu * 100:5.1f}%; "
                  f"above idle {step.marginal_us(idle):6.1f} µs/pkt", flush=True)
    finally:
        await nc.close()
        sfu.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            sfu.wait(20)
        if sfu.poll() is None:
            sfu.kill()
        srv.stop()
        await asyncio.to_thread(log.unlink, missing_ok=True)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,4,6", help="room sizes to measure, in order")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured window per size")
    parser.add_argument("--warmup", type=float, default=6.0, help="seconds before measuring")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    steps = asyncio.run(run(sizes, warmup=args.warmup, seconds=args.seconds))
    clean = [s for s in steps if s.freezes == 0 and s.fps >= 0.9 * FPS]
    busiest = max(steps, key=lambda s: s.forwarded_pps)
    print(f"CPU per forwarded packet at the busiest step ({busiest.people} people): "
          f"{busiest.us_per_packet:.1f} µs (target ≤ 30 µs; LiveKit ≈ 13–25 µs: "
          f"40 000–75 000 pkt/s per core) → {1e6 / max(busiest.us_per_packet, 1e-9):,.0f} "
          f"forwarded pkt/s per core")
    print(f"Largest room without freezes at {WIDTH}x{HEIGHT}/{FPS} fps: "
          f"{max((s.people for s in clean), default=0)} people (of sizes {args.sizes})")
    print(f"machine load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
          "cores (freezes with the generator well under a core are the machine's, not the SFU's)")


if __name__ == "__main__":
    main()
