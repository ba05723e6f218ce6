"""The real `parley sfu` process between aiortc peers: offers over NATS, media over UDP.

aiortc stands in for browsers here (full ICE agent, DTLS client, SRTP, VP8/Opus): each peer
publishes a synthetic camera and microphone, subscribes to the other in slot 0, and must
decode the other's frames through the SFU. The browsers' version is tests/e2e/test_sfu.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack

from services.common import subjects
from services.common.infra import NatsServer, free_port
from services.common.messages import SfuHeartbeat, SfuSessionReply, SfuSessionRequest
from tests.procs import wait_http

SFU_ID = "sfu-test-1"
ROOM = "k" * 22  # a room key (keyed hash), as rooms makes them
IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")


class SfuProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, http: int) -> None:
        self.proc, self.log, self.http = proc, log, http

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics", timeout=5) as r:
            return str(r.read().decode())


@pytest.fixture(scope="module")
def sfu(nats_server: NatsServer) -> Iterator[SfuProcess]:
    http = free_port()
    fd, path = tempfile.mkstemp(prefix="sfu-", suffix=".log")
    env = dict(os.environ, PYTHONUNBUFFERED="1", PARLEY_SFU_NATS_URL=nats_server.url,
               PARLEY_SFU_ID=SFU_ID, PARLEY_SFU_HEARTBEAT_INTERVAL="0.5")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services", "sfu", "--listen", f"127.0.0.1:{free_port()}",
         "--http-host", "127.0.0.1", "--http-port", str(http)],
        stdout=fd, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    os.close(fd)
    try:
        wait_http(f"http://127.0.0.1:{http}/readyz", proc, timeout=60, log=Path(path))
        yield SfuProcess(proc, Path(path), http)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(20)
        if proc.poll() is None:
            proc.kill()
        Path(path).unlink(missing_ok=True)


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[nats.NATS]:
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


async def _ask(nc: nats.NATS, req: SfuSessionRequest) -> SfuSessionReply:
    msg = await nc.request(subjects.sfu_session(SFU_ID), req.model_dump_json().encode(),
                           timeout=20)
    return SfuSessionReply.model_validate_json(msg.data)


async def _peer(nc: nats.NATS, peer_id: str, slots: int = 2) -> tuple[RTCPeerConnection,
                                                                      list[MediaStreamTrack]]:
    # max-bundle: with aiortc's default (balanced) its second video transceiver keeps a
    # transport of its own even when the answer bundles everything
    pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    receivers = []
    for _ in range(slots):
        receivers.append(pc.addTransceiver("audio", direction="recvonly"))
        receivers.append(pc.addTransceiver("video", direction="recvonly"))
    await pc.setLocalDescription(await pc.createOffer())
    reply = await _ask(nc, SfuSessionRequest(room_key=ROOM, peer_id=peer_id,
                                             sdp=pc.localDescription.sdp))
    assert reply.ok and reply.sdp, reply
    assert "a=ice-lite" in reply.sdp
    await pc.setRemoteDescription(RTCSessionDescription(reply.sdp, "answer"))
    return pc, [t.receiver.track for t in receivers]


async def test_two_aiortc_peers_see_each_other_through_the_sfu(
        sfu: SfuProcess, nc: nats.NATS) -> None:
    hb = asyncio.get_running_loop().create_future()

    async def on_heartbeat(msg: object) -> None:
        if not hb.done():
            hb.set_result(SfuHeartbeat.model_validate_json(msg.data))  # type: ignore[attr-defined]

    await nc.subscribe(subjects.sfu_heartbeat(SFU_ID), cb=on_heartbeat)
    heartbeat = await asyncio.wait_for(hb, 10)
    assert heartbeat.sfu_id == SFU_ID and not heartbeat.draining

    (pa, ta), (pb, tb) = await asyncio.gather(_peer(nc, "peer-a"), _peer(nc, "peer-b"))
    try:
        assert (await _ask(nc, SfuSessionRequest(room_key=ROOM, peer_id="peer-a",
                                                 subscribe={"peer-b": 0}))).ok
        assert (await _ask(nc, SfuSessionRequest(room_key=ROOM, peer_id="peer-b",
                                                 subscribe={"peer-a": 1}))).ok
        # slot 0 of a carries b; slot 1 of b carries a: audio and video decode
        frames = await asyncio.wait_for(asyncio.gather(
            ta[1].recv(), ta[0].recv(), tb[3].recv(), tb[2].recv()), 60)
        assert frames[0].width == 640 and frames[2].width == 640  # type: ignore[attr-defined]
        unknown = await _ask(nc, SfuSessionRequest(room_key=ROOM, peer_id="nobody",
                                                   subscribe={}))
        assert unknown.error == "no-session"
        bad = await _ask(nc, SfuSessionRequest(room_key=ROOM, peer_id="peer-c",
                                               sdp="v=0\r\n"))
        assert bad.error == "bad-offer"
    finally:
        await asyncio.gather(pa.close(), pb.close())
    metrics = sfu.metrics()
    forwarded = float(re.search(r"^parley_sfu_packets_forwarded_total (\S+)$", metrics,
                                re.M).group(1))  # type: ignore[union-attr]
    assert forwarded > 0
    # privacy: neither the room key nor any address in its output or metrics
    assert ROOM not in metrics and not IP.search(metrics)
    output = sfu.log.read_text()
    assert ROOM not in output and not IP.search(output), output


async def test_sigterm_drains_keeps_calls_refuses_new_rooms_then_exits(
        nats_server: NatsServer, nc: nats.NATS) -> None:
    """SIGTERM: heartbeats say draining, a new room is refused, the room it hosts still
    takes offers (a late joiner), and the process exits 0 once its last call ends."""
    http = free_port()
    fd, path = tempfile.mkstemp(prefix="sfu-drain-", suffix=".log")
    env = dict(os.environ, PYTHONUNBUFFERED="1", PARLEY_SFU_NATS_URL=nats_server.url,
               PARLEY_SFU_ID="sfu-drain", PARLEY_SFU_HEARTBEAT_INTERVAL="0.3",
               PARLEY_SFU_CONSENT_TIMEOUT="3")
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited on
        [sys.executable, "-m", "services", "sfu", "--listen", f"127.0.0.1:{free_port()}",
         "--http-host", "127.0.0.1", "--http-port", str(http), "--drain-deadline", "60"],
        stdout=fd, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    os.close(fd)
    subject = subjects.sfu_session("sfu-drain")

    async def ask(req: SfuSessionRequest) -> SfuSessionReply:
        msg = await nc.request(subject, req.model_dump_json().encode(), timeout=20)
        return SfuSessionReply.model_validate_json(msg.data)

    beats: asyncio.Queue[SfuHeartbeat] = asyncio.Queue()

    async def on_beat(msg: object) -> None:
        await beats.put(SfuHeartbeat.model_validate_json(msg.data))  # type: ignore[attr-defined]

    await nc.subscribe(subjects.sfu_heartbeat("sfu-drain"), cb=on_beat)
    pcs: list[RTCPeerConnection] = []
    try:
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{http}/readyz", proc,
                                timeout=60, log=Path(path))
        pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        pcs.append(pc)
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        reply = await ask(SfuSessionRequest(room_key=ROOM, peer_id="p1", sdp=offer))
        assert reply.ok and reply.sdp
        await pc.setRemoteDescription(RTCSessionDescription(reply.sdp, "answer"))
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while not (await asyncio.wait_for(beats.get(), 10)).draining:
            assert time.monotonic() < deadline
        refused = await ask(SfuSessionRequest(room_key="another-room", peer_id="p9",
                                              sdp=offer))
        assert (refused.ok, refused.error) == (False, "draining")
        late = await ask(SfuSessionRequest(room_key=ROOM, peer_id="p2", sdp=offer))
        assert late.ok and late.sdp  # the room it hosts goes on
        assert await asyncio.to_thread(_status, f"http://127.0.0.1:{http}/readyz") == 503
        assert proc.poll() is None  # calls go on
        await pc.close()  # the calls end (p2 never connects: its handshake times out)
        assert await asyncio.to_thread(proc.wait, 60) == 0
    finally:
        for one in pcs:
            await one.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.unlink(path)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
